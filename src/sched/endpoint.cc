// Endpoint snapshot helpers.
#include "sched/endpoint.h"

namespace zumik::sched {

const std::string* FindLabel(const Labels& labels, std::string_view key) {
  for (const auto& [k, v] : labels) {
    if (k == key) return &v;
  }
  return nullptr;
}

Duration Endpoint::MetricsAge(Time now) const {
  if (!metrics.valid) return Duration::max();
  return now > metrics.scraped_at ? now - metrics.scraped_at : Duration::zero();
}

}  // namespace zumik::sched
