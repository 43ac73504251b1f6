#include "sim/server/response_store.h"

#include <utility>

namespace zumik::sim {

void ResponseStore::Put(const std::string& id, std::shared_ptr<const StoredResponse> response) {
  if (capacity_ == 0) return;
  std::lock_guard lock(mu_);
  auto [it, inserted] = entries_.try_emplace(id);
  if (!inserted) uses_.erase(it->second.use);
  uses_.push_front(id);
  it->second = Entry{std::move(response), uses_.begin()};
  while (entries_.size() > capacity_) {
    entries_.erase(uses_.back());
    uses_.pop_back();
  }
}

std::shared_ptr<const StoredResponse> ResponseStore::Get(std::string_view id) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(absl::string_view(id.data(), id.size()));
  if (it == entries_.end()) return nullptr;
  uses_.splice(uses_.begin(), uses_, it->second.use);
  return it->second.response;
}

size_t ResponseStore::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace zumik::sim
