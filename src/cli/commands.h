// The `zumik` subcommands. Each Add*Command registers its flags on the app and a callback
// that wires the subsystem's library together; no logic lives here beyond wiring.
#pragma once

#include "CLI/CLI.hpp"

namespace zumik::cli {

// Exit code a subcommand callback sets; CLI11 callbacks cannot return one directly.
int& ExitCode();

// Each subcommand lives in `<name>_command.cc` and defines `void Add<Name>Command(CLI::App&)`;
// the build generates cli/all_commands.h, which declares and registers them all.

}  // namespace zumik::cli
