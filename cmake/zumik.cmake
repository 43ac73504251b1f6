# Project-wide helpers: warnings on our code only, sanitizers, test and fuzz registration.

set(ZUMIK_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Werror)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # GCC 12 has known false positives (-Wrestrict/-Wstringop-overflow in std::string at -O2/-O3)
  # and Boost.Asio coroutines trip its -Wmismatched-new-delete / -Wmaybe-uninitialized
  # in headers we do not own; keep them as warnings, not errors.
  list(APPEND ZUMIK_WARNINGS -Wno-error=maybe-uninitialized -Wno-error=mismatched-new-delete
       -Wno-error=dangling-pointer -Wno-error=restrict -Wno-error=stringop-overflow
       -Wno-error=array-bounds)
endif()

# float-cast-overflow (a double converted to an integer type it does not fit) is undefined
# behaviour that GCC's -fsanitize=undefined leaves out; config and request parsers convert
# user-given numbers, so it is checked too.
set(ZUMIK_SANITIZER_FLAGS -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all
    -fno-omit-frame-pointer)
if(ZUMIK_SANITIZE)
  add_compile_options(${ZUMIK_SANITIZER_FLAGS})
  add_link_options(-fsanitize=address,undefined,float-cast-overflow)
endif()

# Boost.Asio: no deprecated interfaces; one io_context type everywhere.
add_compile_definitions(BOOST_ASIO_NO_DEPRECATED BOOST_ASIO_DISABLE_CONCEPTS)

# zumik_library(NAME SOURCES ... DEPS ...): a library with our warnings.
function(zumik_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(${name} PRIVATE ${ZUMIK_WARNINGS})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()

# zumik_test(NAME SOURCES ... DEPS ... [LABELS ...] [ENVIRONMENT VAR=value ...] [TIMEOUT s]):
# a GoogleTest binary, discovered by ctest.
# Unit tests get the label "unit" and are part of the `unit_tests` target (what the ASan+UBSan
# build compiles); integration tests pass LABELS integration.
add_custom_target(unit_tests)
function(zumik_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS;ENVIRONMENT" ${ARGN})
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  target_compile_options(${name} PRIVATE ${ZUMIK_WARNINGS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  include(GoogleTest)
  gtest_discover_tests(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT}
                       ENVIRONMENT "${ARG_ENVIRONMENT}" DISCOVERY_TIMEOUT 60)
  if("unit" IN_LIST ARG_LABELS)
    add_dependencies(unit_tests ${name})
  endif()
endfunction()

# zumik_benchmark(NAME SOURCES ... DEPS ...): a Google Benchmark binary in build/bench.
function(zumik_benchmark name)
  if(NOT ZUMIK_BENCHMARKS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
  target_compile_options(${name} PRIVATE ${ZUMIK_WARNINGS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} zumik_allocator benchmark::benchmark)
endfunction()

add_custom_target(fuzzers)
# zumik_fuzzer(NAME SOURCES ... DEPS ...): a libFuzzer target, built only with clang and ZUMIK_FUZZ
# (`make fuzz`). In the sanitizer build (what `make test` runs) the same target is built with a
# replay main instead, and its seed corpus fuzz/corpus/NAME/ runs as a unit test under ASan+UBSan.
function(zumik_fuzzer name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  if(NOT ZUMIK_FUZZ)
    if(ZUMIK_SANITIZE)
      add_executable(${name}_replay ${ARG_SOURCES} ${PROJECT_SOURCE_DIR}/fuzz/replay_main.cc)
      set_target_properties(${name}_replay PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
      target_link_libraries(${name}_replay PRIVATE ${ARG_DEPS})
      set(corpus ${PROJECT_SOURCE_DIR}/fuzz/corpus/${name})
      if(NOT EXISTS ${corpus})
        set(corpus)
      endif()
      add_test(NAME ${name}_corpus COMMAND ${name}_replay ${corpus})
      set_tests_properties(${name}_corpus PROPERTIES LABELS unit TIMEOUT 120)
      add_dependencies(unit_tests ${name}_replay)
    else()
      # Never built here, but in the compile database, so that scripts/tidy checks the target.
      add_library(${name}_tidy OBJECT EXCLUDE_FROM_ALL ${ARG_SOURCES})
      target_link_libraries(${name}_tidy PRIVATE ${ARG_DEPS})
    endif()
    return()
  endif()
  add_executable(${name} ${ARG_SOURCES})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
  target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  add_dependencies(fuzzers ${name})
endfunction()
