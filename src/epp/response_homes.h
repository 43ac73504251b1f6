// Where each Responses API response lives. vLLM keeps stored responses in its API server's
// memory (`VLLM_ENABLE_RESPONSES_API_STORE=1`; vllm/entrypoints/openai/responses/serving.py),
// so a follow-up naming `previous_response_id`, and `GET /v1/responses/{id}` or its `/cancel`,
// work only on the replica that created it. The pipeline remembers the replica that answered
// each response (its id from the body) and routes those requests back there.
// Thread-safe; bounded: the least recently used ids are forgotten first.
#pragma once

#include <cstddef>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_map.h"

namespace zumik::epp {

class ResponseHomes {
 public:
  explicit ResponseHomes(size_t capacity) : capacity_(capacity) {}

  // Records (or moves) `id` to `endpoint` ("ip:port"). Nothing when capacity is 0 or id empty.
  void Remember(std::string_view id, std::string_view endpoint);
  // The endpoint that answered `id`, if remembered (and marks it recently used).
  std::optional<std::string> Find(std::string_view id);
  size_t size() const;

 private:
  using Entry = std::pair<std::string, std::string>;  // id, endpoint
  const size_t capacity_;
  mutable std::mutex mu_;
  std::list<Entry> order_;  // most recently used first; guarded by mu_
  absl::flat_hash_map<std::string_view, std::list<Entry>::iterator> by_id_;  // keys in order_
};

}  // namespace zumik::epp
