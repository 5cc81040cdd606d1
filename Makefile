# coronet's front door. Each target does every step it needs (packages, configure, build), so
# any one of them works as the only command typed on a fresh Debian 12 machine.
#
#   make demo       echo_server on TCP, UDP and Unix, measured by coronet_bench (the quick start)
#   make test       build with warnings as errors and run every test
#   make deps       check the Debian packages; install the missing ones when root
#   make build      configure and build the dev preset (programs in build/bin)
#   make install    install headers, library and CMake package under PREFIX
#   make asan       build and test with AddressSanitizer + UndefinedBehaviorSanitizer (clang 14)
#   make tsan       build and test with ThreadSanitizer (clang 14)
#   make clang      build and test with clang 14, optimised as the dev preset
#   make fuzz       libFuzzer (clang 14, ASan + UBSan) on each fuzz target for FUZZ_SECONDS
#                   (default 60) from tests/fuzz/corpus; non-zero exit and crash files on a find
#   make soak       echo_server and chat_server under mixed load with faults for SOAK_SECONDS
#                   (default 300); fails on any error, descriptor growth or RSS growth over 10%
#   make bench      the benchmark matrix: 4 echo servers x 12 cells x 3 runs, medians, README
#                   table and charts in benchmarks/results (about 16 minutes)
#   make clean      remove build/

PREFIX ?= /usr/local
SOAK_SECONDS ?= 300
FUZZ_SECONDS ?= 60
PACKAGES := g++ cmake ninja-build libasio-dev libspdlog-dev doctest-dev libcli11-dev nlohmann-json3-dev \
            libssl-dev openssl curl python3-prometheus-client
CLANG_PACKAGES := clang
# The sanitizer and libFuzzer runtimes are only recommended by clang, and deps installs without.
CLANG_RT_PACKAGES := clang libclang-rt-14-dev

.PHONY: all deps build test demo install asan tsan clang uring fuzz soak release bench clean
all: build

deps:
	@scripts/deps.sh $(PACKAGES)

build: deps
	cmake --preset dev
	cmake --build --preset dev

test: build
	ctest --preset dev

# Only what the demo runs is built, so that it starts sooner on a fresh machine.
demo: deps
	cmake --preset dev
	cmake --build --preset dev --target echo_server coronet_bench
	scripts/demo.sh build/bin

install: build
	cmake --install build --prefix "$(PREFIX)"

release: deps
	cmake --preset release
	cmake --build --preset release

# The sanitizer presets build with clang 14, which compiles them in less than half the time
# g++ 12 takes; with `make test` on g++, every file is then built and tested by both compilers.
asan tsan: deps
	@scripts/deps.sh $(CLANG_RT_PACKAGES)
	cmake --preset $@
	cmake --build --preset $@
	ctest --preset $@

# Asio's io_uring backend instead of epoll (CORONET_IO_URING): the whole suite, optimised.
uring: deps
	@scripts/deps.sh liburing-dev
	cmake --preset uring
	cmake --build --preset uring
	ctest --preset uring

clang: deps
	@scripts/deps.sh $(CLANG_PACKAGES)
	cmake --preset dev-clang
	cmake --build --preset dev-clang
	ctest --preset dev-clang

# The fuzz targets only (no tests or examples), then scripts/fuzz.sh: it works on a copy of the
# corpus in a temporary directory and prints where its crash files are.
fuzz: deps
	@scripts/deps.sh $(CLANG_RT_PACKAGES)
	cmake --preset fuzz
	cmake --build --preset fuzz
	scripts/fuzz.sh build/fuzz $(FUZZ_SECONDS)

# Only what the soak runs; coronet_soak starts the two servers from build/bin itself.
soak: deps
	cmake --preset dev
	cmake --build --preset dev --target echo_server chat_server coronet_soak
	build/bin/coronet_soak --duration $(SOAK_SECONDS)

bench: release
	@scripts/deps.sh gnuplot-nox util-linux
	benchmarks/run_bench.sh build/release/bin

clean:
	rm -rf build
