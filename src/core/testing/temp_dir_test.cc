#include "core/testing/temp_dir.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace zumik::testing {
namespace {

TEST(MakeTempDir, CreatesAFreshDirectoryUnderTmpWithThePrefix) {
  const std::string first = MakeTempDir("zumik-temp-dir-test");
  const std::string second = MakeTempDir("zumik-temp-dir-test");
  EXPECT_NE(first, second);
  EXPECT_TRUE(first.starts_with("/tmp/zumik-temp-dir-test-"));
  EXPECT_TRUE(std::filesystem::is_directory(first));
  EXPECT_TRUE(std::filesystem::is_directory(second));
}

TEST(MakeTempDir, RejectsAPrefixThatNamesNoDirectory) {
  EXPECT_THROW(MakeTempDir("no-such-parent/x"), std::runtime_error);
}

// The cleaner's end-of-program step, called directly while this (passing) program runs.
TEST(TempDirCleaner, RemovesItsDirectoriesWithTheirContentsWhenTheProgramPassed) {
  char path[] = "/tmp/zumik-temp-dir-clean-XXXXXX";
  ASSERT_NE(mkdtemp(path), nullptr);
  std::filesystem::create_directory(std::string(path) + "/data");
  std::ofstream(std::string(path) + "/data/file") << "x";
  temp_dir_internal::Cleaner cleaner;
  cleaner.Add(path);
  cleaner.OnTestProgramEnd(*::testing::UnitTest::GetInstance());
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(TempDirCleaner, KeepsItsDirectoriesWhenAskedTo) {
  char path[] = "/tmp/zumik-temp-dir-keep-XXXXXX";
  ASSERT_NE(mkdtemp(path), nullptr);
  temp_dir_internal::Cleaner cleaner;
  cleaner.Add(path);
  ASSERT_EQ(setenv("ZUMIK_KEEP_TEST_DIRS", "1", 1), 0);
  cleaner.OnTestProgramEnd(*::testing::UnitTest::GetInstance());
  unsetenv("ZUMIK_KEEP_TEST_DIRS");
  EXPECT_TRUE(std::filesystem::is_directory(path));
  std::filesystem::remove_all(path);
}

}  // namespace
}  // namespace zumik::testing
