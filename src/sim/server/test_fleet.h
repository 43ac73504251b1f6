// Test support for the simulator's HTTP server tests: a small in-process fleet on loopback
// (2 replicas of h100-llama-3.1-8b, seed 7, any free ports) and the URL of one replica.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>

#include "sim/server/sim_server.h"

namespace zumik::sim::test_fleet {

// The fleet with `adjust` applied to its options; null (and a test failure) if it cannot start.
template <typename Adjust>
std::unique_ptr<SimServer> StartTestFleet(Adjust&& adjust) {
  auto profile = ResolveProfile("h100-llama-3.1-8b");
  EXPECT_TRUE(profile.ok()) << profile.status();
  if (!profile.ok()) return nullptr;
  SimServerOptions options;
  options.replicas = 2;
  options.port = 0;
  options.profile = *profile;
  options.seed = 7;
  adjust(options);
  auto server = std::make_unique<SimServer>(options);
  const absl::Status started = server->Start();
  EXPECT_TRUE(started.ok()) << started;
  return started.ok() ? std::move(server) : nullptr;
}

inline std::string ReplicaUrl(const SimServer& server, int replica, std::string_view path) {
  return "http://127.0.0.1:" + std::to_string(server.replicas()[replica]->port()) +
         std::string(path);
}

}  // namespace zumik::sim::test_fleet
