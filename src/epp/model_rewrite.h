// The model-name rewrite of the endpoint picker protocol: a request carrying
// x-llm-d-model-name-rewrite (or x-gateway-model-name-rewrite) is served as that model, so the
// body the model server gets names it (GIE v1.0 `requestcontrol/director.go` sets
// body["model"] to the target and updates Content-Length; llm-d-router re-serialises the body
// only when it changed it).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace zumik::epp {

// `body` with its top-level "model" value replaced by `model`. Every other byte stays as the
// client sent it; a body the allocation-free scan is unsure about (a \u escape, a repeated
// key, very deep nesting, ...) is parsed into a DOM and re-serialised instead, which keeps the
// members in order. nullopt when `body` is not a JSON object with a string "model" (the
// request parser has rejected such bodies before any rewrite).
std::optional<std::string> RewriteModel(std::string_view body, std::string_view model);

// Undoes a rewrite in the response for the client: `"model":"<served>"` and
// `"model": "<served>"` become the same with the client's model name, as llm-d-router writes
// responses back (names JSON-escaped). Streams: a chunk's tail that may begin a match is held
// back until the next chunk shows whether it does, or until the end.
class ModelNameRestorer {
 public:
  ModelNameRestorer(std::string_view served_model, std::string_view client_model);

  // Appends what to send for `chunk` to `out`; `end` flushes what was held back.
  void Feed(std::string_view chunk, bool end, std::string& out);
  // The rewritten response may differ in length from the upstream's (drop Content-Length).
  bool changes_length() const { return from_[0].size() != to_[0].size(); }

 private:
  std::string from_[2];  // compact and spaced forms
  std::string to_[2];
  std::string held_;
};

}  // namespace zumik::epp
