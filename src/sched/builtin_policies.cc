// Built-in policies: the text of bench/policies/<name>.yaml (kept identical by
// builtin_policies_test; edit both together).
#include "sched/builtin_policies.h"

namespace zumik::sched {
namespace {

constexpr std::string_view kRoundRobin =
    R"policy(# round-robin: each request goes to the next endpoint in id order, ignoring load and cache.
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

constexpr std::string_view kRandom =
    R"policy(# random: each request goes to an endpoint chosen uniformly at random.
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: random-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: random-picker
)policy";

constexpr std::string_view kLeastRequest =
    R"policy(# least-request: the endpoint with the fewest requests this router has in flight (its own
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

constexpr std::string_view kGieDefault =
    R"policy(# gie-default: the Gateway API Inference Extension default (binary default and Helm
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

constexpr std::string_view kLlmDDefault =
    R"policy(# llm-d-default: the llm-d router's current default, "sticky until saturated" (llm-d blog
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

constexpr std::string_view kZumikDefault =
    R"policy(# zumik-default: ours, what the chart deploys. Sticky until saturated, new prefixes spread, load
# balanced on fresh counts. The prefix index learns what each endpoint caches: the prompts sent
# to it and, when a response ends, prompt + response (indexResponses: the engine caches the
# tokens it decoded), so a conversation's next turn matches its whole history on the endpoint
# that answered. utilization-detector first drops endpoints whose last scrape shows more than 1
# waiting request or KV use above 97% (all of them kept if none is below), so stickiness gives
# way when the home endpoint queues or its KV is full; then the prefix-cache-affinity-filter
# keeps only endpoints that hold at least 80% of the prompt (unless their queued prefill is more
# than 18 s worse than the best other endpoint's). Where none does and none holds half of it, it
# keeps those holding at least 1,024 leading tokens (minAffinityTokens: a group's shared system
# prompt ahead of a longer private question), unless the least busy of them has more in-flight
# requests than 1.2 x the least busy other endpoint's + 3: such a group then stays on one
# endpoint and its prefix stays cached there, instead of being copied onto whichever endpoint the
# load scorers pick and evicted everywhere (low-cache hits 8.3% -> 14.3%, oracle 15.5%); the
# request gate lets a clearly busier home go, as a ~1k-token hit saves only ~70 ms of prefill.
# Share-based stickiness has a gate too (affinityLoadSlack, ours): a home holding 80% of the
# prompt is let go when its in-flight requests exceed 1.2 x the least busy other endpoint's + 16,
# so one home does not carry a long-decoding backlog the rest of the fleet could share (chosen
# on seeds 1-10 and checked on seeds 11-20: bench/RESULTS.md, "Session 10").
# Among the kept endpoints, and for prompts cached nowhere, no-hit-lru-scorer sends a new prefix
# to the endpoint that least recently received one, and active-request-scorer (this router's
# in-flight requests, fresh at every pick) overrides that order when an endpoint is clearly
# busier, so prefix groups are packed evenly by count and load as the oracle packs them.
# queue-scorer (scraped waiting requests) only discriminates once some endpoint queues, and then
# steers away from the queue; token-load-scorer (in-flight prefill tokens) breaks the remaining
# ties. prefix-cache-scorer at weight 0.5 (the share of the prompt each endpoint holds) leans
# towards partial matches the filter leaves to the scorers. The prefix index matches whole
# prompts (16-token blocks, up to 128k tokens). Tuned on the virtual fleet (bench/RESULTS.md,
# "Tuning zumik-default"); predicted-ttft-scorer is not used: its per-endpoint learned prefill
# rate collapses on busy endpoints and drives traffic off them. indexResponses needs a transport
# that reports the response text: the virtual bench and the EPP do (the EPP collects the text of
# each of a completions or chat request's n choices, and the output text of Responses API
# responses, streamed or not, when the policy asks for it).
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: approx-prefix-cache-producer
  parameters:
    autoTune: true
    blockSizeTokens: 16
    maxPrefixTokensToMatch: 131072
    lruCapacityPerServer: 31250
    indexResponses: true
- type: utilization-detector
  parameters:
    queueDepthThreshold: 1
    kvCacheUtilThreshold: 0.97
- type: prefix-cache-affinity-filter
  parameters:
    affinityThreshold: 0.8
    maxTTFTPenaltyMs: 18000
    peakPrefillThroughput: 15928
    minAffinityTokens: 1024
    minAffinityLoadSlack: 0.2
    minAffinityLoadSlackRequests: 3
    affinityLoadSlack: 0.2
    affinityLoadSlackRequests: 16
- type: token-load-scorer
- type: no-hit-lru-scorer
- type: active-request-scorer
- type: queue-scorer
- type: prefix-cache-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: utilization-detector
  - pluginRef: prefix-cache-affinity-filter
  - pluginRef: token-load-scorer
    weight: 1
  - pluginRef: no-hit-lru-scorer
    weight: 1
  - pluginRef: active-request-scorer
    weight: 1
  - pluginRef: queue-scorer
    weight: 0.5
  - pluginRef: prefix-cache-scorer
    weight: 0.5
  - pluginRef: max-score-picker
)policy";

constexpr BuiltinPolicy kPolicies[] = {
    {"round-robin", kRoundRobin},     {"random", kRandom},
    {"least-request", kLeastRequest}, {"gie-default", kGieDefault},
    {"llm-d-default", kLlmDDefault},  {"zumik-default", kZumikDefault},
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
