#include <cstdio>

#include "cli/commands.h"

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
  cmd->callback([] { std::printf("zumik %s\n", ZUMIK_VERSION); });
}

}  // namespace zumik::cli
