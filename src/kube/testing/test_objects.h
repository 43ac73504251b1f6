// Builders of Kubernetes objects (Pods, InferencePools, Nodes) for the kube and operator tests.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <map>
#include <string>
#include <vector>

namespace zumik::kube::testing {

inline boost::json::object MakeMetadata(const std::string& name, const std::string& ns,
                                        const std::map<std::string, std::string>& labels = {}) {
  boost::json::object metadata;
  metadata["name"] = name;
  if (!ns.empty()) metadata["namespace"] = ns;
  if (!labels.empty()) {
    boost::json::object l;
    for (const auto& [k, v] : labels) l[k] = v;
    metadata["labels"] = std::move(l);
  }
  return metadata;
}

// A Pod; ready means phase Running with condition Ready=True.
inline boost::json::object MakePod(const std::string& name, const std::string& ns,
                                   const std::map<std::string, std::string>& labels,
                                   const std::string& ip, bool ready) {
  boost::json::object pod;
  pod["metadata"] = MakeMetadata(name, ns, labels);
  boost::json::object status;
  status["phase"] = ready ? "Running" : "Pending";
  if (!ip.empty()) status["podIP"] = ip;
  boost::json::array conditions;
  boost::json::object condition;
  condition["type"] = "Ready";
  condition["status"] = ready ? "True" : "False";
  conditions.push_back(std::move(condition));
  status["conditions"] = std::move(conditions);
  pod["status"] = std::move(status);
  return pod;
}

// An inference.networking.k8s.io/v1 InferencePool.
inline boost::json::object MakePoolV1(const std::string& name, const std::string& ns,
                                      const std::map<std::string, std::string>& match_labels,
                                      const std::vector<int>& ports) {
  boost::json::object pool;
  pool["metadata"] = MakeMetadata(name, ns);
  boost::json::object spec;
  boost::json::object selector;
  boost::json::object match;
  for (const auto& [k, v] : match_labels) match[k] = v;
  selector["matchLabels"] = std::move(match);
  spec["selector"] = std::move(selector);
  boost::json::array target_ports;
  for (int port : ports) {
    boost::json::object p;
    p["number"] = port;
    target_ports.push_back(std::move(p));
  }
  spec["targetPorts"] = std::move(target_ports);
  pool["spec"] = std::move(spec);
  return pool;
}

// An inference.networking.x-k8s.io/v1alpha2 InferencePool.
inline boost::json::object MakePoolV1Alpha2(const std::string& name, const std::string& ns,
                                            const std::map<std::string, std::string>& selector,
                                            int port) {
  boost::json::object pool;
  pool["metadata"] = MakeMetadata(name, ns);
  boost::json::object spec;
  boost::json::object s;
  for (const auto& [k, v] : selector) s[k] = v;
  spec["selector"] = std::move(s);
  spec["targetPortNumber"] = port;
  pool["spec"] = std::move(spec);
  return pool;
}

// A Node with `gpus` allocatable nvidia.com/gpu and the nvidia.com/gpu.product label.
inline boost::json::object MakeGpuNode(const std::string& name, const std::string& product,
                                       int gpus) {
  std::map<std::string, std::string> labels;
  if (!product.empty()) labels["nvidia.com/gpu.product"] = product;
  boost::json::object node;
  node["metadata"] = MakeMetadata(name, "", labels);
  boost::json::object allocatable;
  allocatable["cpu"] = "32";
  if (gpus > 0) allocatable["nvidia.com/gpu"] = std::to_string(gpus);
  boost::json::object status;
  status["allocatable"] = std::move(allocatable);
  node["status"] = std::move(status);
  return node;
}

}  // namespace zumik::kube::testing
