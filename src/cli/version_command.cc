#include <cstdio>

#include "cli/commands.h"
#include "core/allocator.h"

#ifndef ZUMIK_VERSION
#define ZUMIK_VERSION "0.1.0-dev"
#endif

namespace zumik::cli {

int& ExitCode() {
  static int code = 0;
  return code;
}

void AddVersionCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand("version", "Print the zumik version");
  cmd->callback([] {
    std::printf("zumik %s\nallocator: %s\n", ZUMIK_VERSION, zumik::AllocatorDescription().c_str());
  });
}

}  // namespace zumik::cli
