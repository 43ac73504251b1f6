# The two set-up commands: `make up` (run the profile) and `make test` (run every test).
# Both bootstrap the machine (idempotent apt installs) and build first.
.PHONY: up test build bench bootstrap unit asan fuzz format tidy clean

JOBS ?= $(shell nproc)
# ccache: paths under the checkout are hashed relative to it, so a fresh clone elsewhere still
# hits the cache.
export CCACHE_BASEDIR := $(CURDIR)
FUZZ_SECONDS ?= 20

bootstrap:
	@scripts/bootstrap

build: bootstrap
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS)

up: build
	@scripts/up $(UP_ARGS)

test: build
	@scripts/test

bench: build
	@scripts/bench

asan: bootstrap
	@cmake --preset asan-ubsan >/dev/null
	@cmake --build --preset asan-ubsan -j $(JOBS)
	@ctest --preset asan-ubsan

fuzz: bootstrap
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz -j $(JOBS)
	@scripts/run-fuzzers $(FUZZ_SECONDS)

# Reformats every tracked C++ file with .clang-format (`make test` checks it: source_format).
format: bootstrap
	@scripts/check-format --fix

# clang-tidy 14 (.clang-tidy) over every translation unit of src/ and tests/ (scripts/tidy).
tidy: build
	@scripts/tidy

clean:
	rm -rf build
