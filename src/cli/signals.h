// Blocking wait for SIGINT/SIGTERM in the main thread, for long-running subcommands.
#pragma once

namespace zumik::cli {

// Blocks SIGINT and SIGTERM in this thread (call before starting worker threads, which then
// inherit the mask), so that WaitForTerminationSignal receives them.
void BlockTerminationSignals();
// Waits for SIGINT or SIGTERM; returns the signal number.
int WaitForTerminationSignal();

}  // namespace zumik::cli
