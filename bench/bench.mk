# The performance bench (doc/README-bench.md). Included by the top Makefile:
#   include bench/bench.mk
# `make bench`        the full bench, release build: one table on stdout and in target/bench.txt,
#                     the same as JSON in target/bench.json (medians of BENCH_RUNS runs, default 3)
# `make bench-smoke`  every measuring path once with tiny counts (part of `make test`); fails
#                     only if a path is broken, never because of a figure
# Both install the peers' tools first if they are missing (curl, busybox; nginx-light for bench).

BENCH_ARGS ?=

.PHONY: bench bench-smoke

bench:
	bench/run.sh $(BENCH_ARGS)

bench-smoke:
	bench/run.sh --smoke
