// Built-in policies, by name. Each is the exact text of bench/policies/<name>.yaml, embedded so
// the binaries work anywhere; builtin_policies_test keeps the two identical.
#pragma once

#include <span>
#include <string_view>

namespace zumik::sched {

struct BuiltinPolicy {
  std::string_view name;
  std::string_view yaml;
};

// round-robin, random, least-request, gie-default, llm-d-default, zumik-default.
std::span<const BuiltinPolicy> BuiltinPolicies();
const BuiltinPolicy* FindBuiltinPolicy(std::string_view name);

}  // namespace zumik::sched
