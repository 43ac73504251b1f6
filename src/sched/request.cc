// Request helpers.
#include "sched/request.h"

namespace zumik::sched {

void AppendChatMessage(std::string& out, std::string_view role, std::string_view content) {
  out.reserve(out.size() + role.size() + content.size() + 24);
  out.append("<|im_start|>").append(role).append("\n").append(content).append("<|im_end|>\n");
}

}  // namespace zumik::sched
