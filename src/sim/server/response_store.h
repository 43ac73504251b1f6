// A replica's stored Responses API responses (`zumik sim --responses-store`), as vLLM keeps
// them in its API server's memory with VLLM_ENABLE_RESPONSES_API_STORE=1 (serving_responses.py:
// response_store and msg_store). vLLM's dicts are never pruned ("This may cause a memory leak");
// this store is deliberately bounded: past its capacity the least recently used response (put
// or read) is dropped, and a follow-up naming it gets the same 404 as an unknown id.
#pragma once

#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "sim/responses_api.h"

namespace zumik::sim {

struct StoredResponse {
  ResponseConversation conversation;
  std::string body;  // the response object as POST returned it (GET returns it again)
};

// Thread-safe: handlers on different strands share one store per replica.
class ResponseStore {
 public:
  static constexpr size_t kDefaultCapacity = 10000;

  explicit ResponseStore(size_t capacity = kDefaultCapacity) : capacity_(capacity) {}

  void Put(const std::string& id, std::shared_ptr<const StoredResponse> response);
  // nullptr when unknown (or dropped); a hit counts as a use.
  std::shared_ptr<const StoredResponse> Get(std::string_view id);
  size_t size() const;

 private:
  struct Entry {
    std::shared_ptr<const StoredResponse> response;
    std::list<std::string>::iterator use;
  };

  const size_t capacity_;
  mutable std::mutex mu_;
  std::list<std::string> uses_;                      // guarded by mu_: most recent first
  absl::flat_hash_map<std::string, Entry> entries_;  // guarded by mu_
};

}  // namespace zumik::sim
