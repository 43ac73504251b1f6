// Bounded id → endpoint map for the Responses API (see response_homes.h).
#include "epp/response_homes.h"

namespace zumik::epp {

void ResponseHomes::Remember(std::string_view id, std::string_view endpoint) {
  if (capacity_ == 0 || id.empty()) return;
  std::lock_guard lock(mu_);
  if (auto it = by_id_.find(id); it != by_id_.end()) {
    it->second->second = std::string(endpoint);
    order_.splice(order_.begin(), order_, it->second);
    return;
  }
  if (order_.size() >= capacity_) {
    by_id_.erase(order_.back().first);
    order_.pop_back();
  }
  order_.emplace_front(std::string(id), std::string(endpoint));
  by_id_.emplace(order_.front().first, order_.begin());
}

std::optional<std::string> ResponseHomes::Find(std::string_view id) {
  std::lock_guard lock(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return std::nullopt;
  order_.splice(order_.begin(), order_, it->second);
  return it->second->second;
}

size_t ResponseHomes::size() const {
  std::lock_guard lock(mu_);
  return order_.size();
}

}  // namespace zumik::epp
