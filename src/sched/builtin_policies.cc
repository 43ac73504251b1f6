// Built-in policies: the text of bench/policies/<name>.yaml (kept identical by
// builtin_policies_test; edit both together).
#include "sched/builtin_policies.h"

namespace zumik::sched {
namespace {

constexpr std::string_view kRoundRobin = R"policy(# round-robin: each request goes to the next endpoint in id order, ignoring load and cache.
# The baseline every routing claim is measured against (what a Kubernetes Service does).
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: round-robin-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: round-robin-picker
)policy";

constexpr std::string_view kRandom = R"policy(# random: each request goes to an endpoint chosen uniformly at random.
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: random-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: random-picker
)policy";

constexpr std::string_view kLeastRequest = R"policy(# least-request: the endpoint with the fewest requests this router has in flight (its own
# counts, fresh at every pick, not scraped), ties broken at random.
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: active-request-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: active-request-scorer
    weight: 1
  - pluginRef: max-score-picker
)policy";

constexpr std::string_view kGieDefault = R"policy(# gie-default: the Gateway API Inference Extension default (binary default and Helm
# default-plugins.yaml since v1.2.0): queue 2, kv-cache 2, prefix 3, max-score picker.
# The prefix parameters are GIE's own defaults (64-byte blocks, the first 256 blocks matched,
# 31250 entries per endpoint, auto-tuned from vllm:cache_config_info).
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
  parameters:
    autoTune: true
    blockSize: 64
    maxPrefixBlocksToMatch: 256
    lruCapacityPerServer: 31250
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: kv-cache-utilization-scorer
    weight: 2
  - pluginRef: prefix-cache-scorer
    weight: 3
  - pluginRef: max-score-picker
)policy";

constexpr std::string_view kLlmDDefault = R"policy(# llm-d-default: the llm-d router's current default, "sticky until saturated" (llm-d blog
# 2026-08-17, optimized-baseline guide): keep only endpoints holding at least 80% of the prompt,
# unless their in-flight prefill (tokens / peakPrefillThroughput) is more than 18 s worse than
# the best other endpoint's; then the fewest in-flight tokens wins.
apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: approx-prefix-cache-producer
- type: prefix-cache-affinity-filter
  parameters:
    affinityThreshold: 0.8
    maxTTFTPenaltyMs: 18000
    peakPrefillThroughput: 15928
- type: token-load-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: prefix-cache-affinity-filter
  - pluginRef: token-load-scorer
    weight: 1
  - pluginRef: max-score-picker
)policy";

constexpr std::string_view kZumikDefault = R"policy(# zumik-default: ours, what the chart deploys. One scorer, predicted-ttft-scorer, estimates each
# endpoint's time to first token for this request: the prefill work queued there (this router's
# fresh in-flight counts, plus what the scrape shows beyond them) and this request's uncached
# tokens, over the prefill rate learned from that endpoint's observed TTFTs, plus a decode-load
# term. Cache affinity is thereby traded against load in one unit (milliseconds); an
# x-llm-d-slo-ttft-ms hint ranks endpoints that meet it first. uncachedPenalty > 0 charges
# recomputing a prompt elsewhere beyond its own TTFT (the work it takes from later requests),
# which keeps groups sticky under load. The weights here are starting points for tuning.
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: approx-prefix-cache-producer
  parameters:
    autoTune: true
    blockSizeTokens: 16
    maxPrefixTokensToMatch: 131072
    lruCapacityPerServer: 31250
- type: predicted-ttft-scorer
  parameters:
    prefillTokensPerSecond: 15928
    ttftScaleMs: 1000
    decodeMsPerRequest: 0.2
    uncachedPenalty: 1.0
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: predicted-ttft-scorer
    weight: 1
  - pluginRef: max-score-picker
)policy";

constexpr BuiltinPolicy kPolicies[] = {
    {"round-robin", kRoundRobin},
    {"random", kRandom},
    {"least-request", kLeastRequest},
    {"gie-default", kGieDefault},
    {"llm-d-default", kLlmDDefault},
    {"zumik-default", kZumikDefault},
};

}  // namespace

std::span<const BuiltinPolicy> BuiltinPolicies() { return kPolicies; }

const BuiltinPolicy* FindBuiltinPolicy(std::string_view name) {
  for (const BuiltinPolicy& policy : kPolicies) {
    if (policy.name == name) return &policy;
  }
  return nullptr;
}

}  // namespace zumik::sched
