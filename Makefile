# event-notify — the two commands a new user runs on a fresh Debian 12 machine:
#   make demo   the daemon, a receiver and a sample call on loopback: what the phone sends
#   make test   every test: host, ARM under qemu-user, the QEMU ARM images, C API, SIP, bench smoke
# Both install what they need first (apt packages, rustup targets, guest kernels).

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never
# Prefix of the commands that only compile, in the test goals. `make test` sets it to
# `nice -n 10`: its two lanes run at once, and a lane's test runs (daemons, timeouts, QEMU) must
# not wait for the other lane's compiler. Empty (no change) when a goal runs alone.
BUILD_NICE ?=

.PHONY: all build demo test test-host lint setup setup-host bench bench-smoke cross qemu-test clean fuzz

all: build

build:
	$(CARGO) build --release

# What the host tests need beyond the Rust toolchain: the real SIP peers (baresip, sipp), and
# python3 and node, which run the receivers' manual's signature verifiers (tests/it/signing.rs), and
# curl (the admin server's tests use it as a real Digest/Basic client).
HOST_PKGS = baresip-core sip-tester iproute2 util-linux python3 nodejs curl
setup-host:
	@sh scripts/ensure-apt.sh $(HOST_PKGS)

# Cross linkers, qemu, rustup targets, guest kernels and busybox (see cross/setup.sh).
setup: setup-host
	@sh cross/setup.sh

demo:
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust (rustup)"; exit 1; }
	$(CARGO) build --release --quiet
	@sh demo/demo.sh target/release/event-notify

# Host tests: unit, doc and integration tests (real daemon processes on loopback).
test-host: setup-host
	$(BUILD_NICE) $(CARGO) test --no-run
	$(CARGO) test
	@# The builds without default features must keep compiling (checked, not linked: the size
	@# rows of `make bench` build them): none at all (the flash-size build), and a handset's
	@# firmware build (TLS, no import, no listen). In the same target directory as the tests and
	@# `make lint`: cargo keeps each feature set's artifacts apart, and the dependencies whose
	@# features do not change (and the proc macros) are already built there (~9 s instead of ~67 s
	@# for both, measured under load).
	$(BUILD_NICE) $(CARGO) check --no-default-features --lib --bins --quiet
	$(BUILD_NICE) $(CARGO) check --no-default-features --features tls --lib --bins --quiet
	@# The integration and unit tests too, without default features (checked, not run: the
	@# suite's HTTPS, import and listen tests need their features to pass).
	$(BUILD_NICE) $(CARGO) check --tests --no-default-features --quiet

# Lints: clippy on every target with warnings as errors, and the formatting.
lint:
	$(BUILD_NICE) $(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) fmt --check

# Fuzzing (cargo-fuzz on nightly; see fuzz/): each target for FUZZ_SECONDS, growing its corpus
# under fuzz/corpus/<target>/. Only files named seed-* are committed (fuzz/.gitignore): rename
# an input worth keeping (a crash's reproducer, after the fix) to seed-*; `make test` replays
# every committed one on stable through tests/it/fuzz_corpus.rs. Installs cargo-fuzz if missing.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= wire_line config template netstring http_head http_response import
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
		(cd fuzz && $(CARGO) +nightly fuzz run $$t corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=1024 -timeout=10) || exit 1; \
	done

# include, not -include: a renamed file must fail the build, not silently drop a suite.
include cross/cross.mk
include tests/c/c.mk
include bench/bench.mk
include tests/page/page.mk

# `make test`: after setup, two lanes at once (scripts/test-lanes.sh), each running its goals in
# order and stopping at its first failure; either failing fails `make test`:
#   host lane: lint, test-host, then $(EXTRA_TESTS) (the included .mk files add to it), then
#              the ARM lane's release builds (test-lane-cross, below)
#   ARM lane:  $(EXTRA_TESTS_ARM), in its own target directory $(TEST_ARM_DIR)
#              (cargo locks a target directory while it builds), its output in $(TEST_ARM_LOG),
#              shown after the host lane's
# On 2 cores the lanes fill each other's idle time (test runs, QEMU boots, single-threaded
# links). Each goal also runs alone: `make test-host`, `make test-arm`, ...
# Every build of `make test` starts from nothing on a fresh machine (and in CI): incremental
# compilation's bookkeeping only costs there. Also in effect for the prerequisites and lanes.
TEST_ARM_DIR = $(abspath $(or $(CARGO_TARGET_DIR),target))/lane-arm
TEST_ARM_LOG = $(abspath $(or $(CARGO_TARGET_DIR),target))/make-test-arm.log
# Not $(MAKE) in the recipe: that would mark it recursive and run it even under `make -n`.
TEST_MAKE := $(MAKE)
test: export CARGO_INCREMENTAL = 0
test: export BUILD_NICE = nice -n 10
test: setup
	@MAKE="$(TEST_MAKE)" sh scripts/test-lanes.sh $(TEST_ARM_DIR) $(TEST_ARM_LOG) \
		"$(strip $(EXTRA_TESTS_ARM))" "$(strip lint test-host $(EXTRA_TESTS) test-lane-cross)"
	@echo "make test: all passed"

# The host lane's last goal, as it ends first: the ARM release builds that qemu-test boots
# (`make cross`), in the ARM lane's target directory, while that lane runs its tests under
# qemu-user. cargo's lock orders the two; qemu-test then finds them built (or builds them itself
# if the host lane stopped before).
.PHONY: test-lane-cross
test-lane-cross:
	@$(MAKE) --no-print-directory cross CARGO_TARGET_DIR=$(TEST_ARM_DIR)

clean:
	$(CARGO) clean
