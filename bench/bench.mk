# bench/bench.mk: the performance bench (docs/PERFORMANCE.md). Included by the top Makefile
# (paths relative to the repository root).
#
#   make bench          the full bench, release build (~30 minutes): one table on stdout and in
#                       target/bench.txt, the same as JSON in target/bench.json; each figure is
#                       the median of BENCH_RUNS runs (default 3). BENCH_ARGS passes options,
#                       e.g. make bench BENCH_ARGS="--runs 5 --no-sizes"
#   make bench-smoke    every measuring path once with tiny counts, in the test profile (part of
#                       `make test`): fails only if a path is broken, never because of a figure
#
# Both first install the peers' tools if they are missing (curl, busybox, gcc and
# libcurl4-openssl-dev for the libcurl peer bench/curl_peer.c; nginx-light and the rustup target
# x86_64-unknown-linux-musl for the full bench).

CARGO ?= cargo
BENCH_ARGS ?=

.PHONY: bench bench-smoke

bench:
	CARGO="$(CARGO)" sh bench/run.sh $(BENCH_ARGS)

# The build first, as a build (BUILD_NICE: see the top-level Makefile), then the smoke run.
bench-smoke:
	$(BUILD_NICE) $(CARGO) test --bench bench --no-run
	CARGO="$(CARGO)" sh bench/run.sh --smoke

EXTRA_TESTS += bench-smoke
