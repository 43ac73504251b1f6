// Dotted-path lookups in parsed JSON objects ("metadata.name", "spec.poolRef.name"), shared by
// the Kubernetes client, the operator and the EPP's model rules.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <string>
#include <string_view>

namespace zumik {

// The value at a dotted path; nullptr when any step is missing or is not an object.
const boost::json::value* FindPath(const boost::json::object& object, std::string_view dotted);

// The string at a dotted path; empty when it is missing or not a string.
std::string StringAt(const boost::json::object& object, std::string_view dotted);

}  // namespace zumik
