#include "core/allocator.h"

#include <fmt/format.h>

#include <cstdlib>

#ifdef ZUMIK_MIMALLOC
#include <mimalloc.h>
#endif

namespace zumik {

std::string AllocatorDescription() {
#ifdef ZUMIK_MIMALLOC
  const int version = mi_version();  // 209 for 2.0.9
  std::string out =
      fmt::format("mimalloc {}.{}.{}", version / 100, version / 10 % 10, version % 10);
  // The malloc this process calls: mimalloc's only if its symbols won over libc's at load time.
  void* probe = std::malloc(64);
  const bool overridden = mi_is_in_heap_region(probe);
  std::free(probe);
  if (!overridden) out += " linked, but malloc is another allocator's";
  return out;
#else
  return "glibc malloc";
#endif
}

}  // namespace zumik
