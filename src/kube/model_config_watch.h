// Watches the InferenceObjectives and InferenceModelRewrites of one namespace for the EPP,
// under both API groups that define them: llm-d.ai/v1alpha2 (llm-d-router) and
// inference.networking.x-k8s.io/v1alpha2 (Gateway API Inference Extension v1.x). A resource
// whose CRD is not installed is looked for again every `probe_interval` (quietly) and watched
// once the API serves it. Where both groups hold an object of the same kind and name, the
// llm-d.ai one is reported.
//
// Threading: the callback runs on an internal strand of `executor`, never concurrently with
// itself, after every change of either set. It must not block and must not call Stop().
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kube/client.h"
#include "kube/reflector.h"

namespace zumik::kube {

inline const Resource kInferenceObjectivesLlmd{"llm-d.ai", "v1alpha2", "inferenceobjectives", true};
inline const Resource kInferenceObjectivesXK8s{"inference.networking.x-k8s.io", "v1alpha2",
                                               "inferenceobjectives", true};
inline const Resource kInferenceModelRewritesLlmd{"llm-d.ai", "v1alpha2", "inferencemodelrewrites",
                                                  true};
inline const Resource kInferenceModelRewritesXK8s{"inference.networking.x-k8s.io", "v1alpha2",
                                                  "inferencemodelrewrites", true};

struct ModelConfigObjects {
  std::vector<boost::json::object> objectives;
  std::vector<boost::json::object> rewrites;
};

struct ModelConfigWatchOptions {
  std::string namespace_name = "default";
  // How often a resource the API does not serve yet is looked for.
  std::chrono::milliseconds probe_interval = std::chrono::seconds(30);
  ReflectorOptions reflector;
};

class ModelConfigWatch {
 public:
  using Callback = std::function<void(const ModelConfigObjects& objects)>;

  // `client` must outlive this object.
  ModelConfigWatch(const boost::asio::any_io_executor& executor, Client& client,
                   ModelConfigWatchOptions options, Callback callback);
  // Stops (see Stop).
  ~ModelConfigWatch();
  ModelConfigWatch(const ModelConfigWatch&) = delete;
  ModelConfigWatch& operator=(const ModelConfigWatch&) = delete;

  // Starts looking for the resources and watching them. Call once.
  void Start();
  // Ends the watches and waits for them: no callback runs after it returns. Call it from a
  // thread that is not the only one running the executor. Idempotent.
  void Stop();

  // The resources being watched, as "plural.group" (for logs and tests).
  std::vector<std::string> watched() const;

  // Implementation detail (shared with the background coroutine).
  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace zumik::kube
