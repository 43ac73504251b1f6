// Temporary directories for tests that clean up after themselves.
//
// MakeTempDir("prefix") creates /tmp/prefix-XXXXXX. When the test program ends with every test
// passed, each directory it made is removed (a test's PostgreSQL data directory is ~40 MB, and
// `make test` runs hundreds of test programs). When a test failed, the directories are kept for
// inspection and named on stderr. ZUMIK_KEEP_TEST_DIRS=1 keeps them always.
//
// Removal happens in gtest's OnTestProgramEnd, after every suite and environment has torn down,
// so a server a fixture stops in TearDownTestSuite or an Environment is stopped first. Objects
// that outlive RUN_ALL_TESTS (function-local statics) must not still use a directory.
//
// Header-only, for test code; it needs gtest.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace zumik::testing {
namespace temp_dir_internal {

class Cleaner : public ::testing::EmptyTestEventListener {
 public:
  void Add(std::string dir) {
    std::lock_guard lock(mu_);
    dirs_.push_back(std::move(dir));
  }

  void OnTestProgramEnd(const ::testing::UnitTest& unit) override {
    std::vector<std::string> dirs;
    {
      std::lock_guard lock(mu_);
      dirs.swap(dirs_);
    }
    const char* keep_env = std::getenv("ZUMIK_KEEP_TEST_DIRS");
    const bool keep = !unit.Passed() || (keep_env != nullptr && *keep_env != '\0');
    for (const std::string& dir : dirs) {
      if (keep) {
        std::fprintf(stderr, "kept test directory %s\n", dir.c_str());
        continue;
      }
      std::error_code error;
      std::filesystem::remove_all(dir, error);
      if (error) {
        std::fprintf(stderr, "could not remove test directory %s: %s\n", dir.c_str(),
                     error.message().c_str());
      }
    }
  }

 private:
  std::mutex mu_;
  std::vector<std::string> dirs_;
};

// Registered with gtest on first use; gtest owns it.
inline Cleaner& TheCleaner() {
  static Cleaner* const cleaner = [] {
    auto* created = new Cleaner;
    ::testing::UnitTest::GetInstance()->listeners().Append(created);
    return created;
  }();
  return *cleaner;
}

}  // namespace temp_dir_internal

// A fresh directory /tmp/<prefix>-XXXXXX, removed when the test program ends if it passed.
inline std::string MakeTempDir(const std::string& prefix) {
  std::string path = "/tmp/" + prefix + "-XXXXXX";
  if (mkdtemp(path.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed for " + path);
  }
  temp_dir_internal::TheCleaner().Add(path);
  return path;
}

}  // namespace zumik::testing
