// The `zumik` subcommands. Each Add*Command registers its flags on the app and a callback
// that wires the subsystem's library together; no logic lives here beyond wiring.
#pragma once

#include "CLI/CLI.hpp"

namespace zumik::cli {

// Exit code a subcommand callback sets; CLI11 callbacks cannot return one directly.
int& ExitCode();

void AddVersionCommand(CLI::App& app);
void AddSimCommand(CLI::App& app);

}  // namespace zumik::cli
