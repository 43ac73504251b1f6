// `zumik`: one binary, one subcommand per part of the profile (see README.md).
#include <cstdio>

#include "CLI/CLI.hpp"
#include "cli/all_commands.h"
#include "cli/commands.h"
#include "core/log.h"

int main(int argc, char** argv) {
  CLI::App app{"Zumik Portable: the EPP-owned BYOC LLM serving stack, runnable on one machine"};
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off")
      ->capture_default_str();
  // Global flags may follow the subcommand too (`zumik sim --log-level warn`): subcommands
  // inherit this and hand the parent the options they do not know.
  app.fallthrough();
  app.parse_complete_callback([&] {
    if (auto status = zumik::InitLogging(log_level); !status.ok()) {
      throw CLI::ValidationError("--log-level", std::string(status.message()));
    }
  });

  zumik::cli::AddAllCommands(app);

  CLI11_PARSE(app, argc, argv);
  return zumik::cli::ExitCode();
}
