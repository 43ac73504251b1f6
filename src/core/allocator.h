// The process allocator. The `zumik` binary and the benchmarks link mimalloc (Debian's
// libmimalloc2.0) in place of glibc's malloc: the gateway and the simulator allocate a few dozen
// small blocks per request, and glibc's malloc and free cost about a sixth of the gateway's
// instructions (bench/RESULTS.md, "Session 13"). Sanitizer builds keep their own allocator.
// Only the zumik_allocator object library defines this; unit tests do not link it.
#pragma once

#include <string>

namespace zumik {

// "mimalloc 2.0.9", or "glibc malloc" in a build without mimalloc. When mimalloc is linked but
// malloc still reaches another allocator (a preloaded library, a static link), says so.
std::string AllocatorDescription();

}  // namespace zumik
