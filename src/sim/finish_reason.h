// Why a request ended, shared by the engine (which decides it) and the OpenAI layer (which
// reports it as `finish_reason`, and vLLM's metrics as `finished_reason`).
#pragma once

#include <cstdint>
#include <string_view>

namespace zumik::sim {

enum class FinishReason : uint8_t { kStop, kLength, kAbort };

// vLLM's names: "stop", "length", "abort".
constexpr std::string_view FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kAbort:
      return "abort";
  }
  return "abort";
}

}  // namespace zumik::sim
