# cross/cross.mk: ARM cross builds, the test suite under qemu-user, and the QEMU ARM images.
# Included by the top-level Makefile (paths are relative to the repository root); see
# docs/FIRMWARE.md ("On the handset").
#
#   make cross          release binaries for both ARM targets, static, with their sizes
#   make cross-sizes    the size table: both targets, with and without TLS
#   make test-arm       the whole test suite for both ARM targets under qemu-user
#   make qemu-test      boot the qemu-virt image per target and run the end-to-end test in it
#   make qemu-shell ARCH=armhf|arm64   boot the image to a root shell (quit: Ctrl-A x)
#   make check-boards   board/*: board.json accepted, sample configs valid, init files consistent
#   make test-hot       cross/hot/link-gcc, the handset builds' linker, on a small program
#   make hot-profile    make cross/hot/functions.txt again (the functions placed first)
#   make cross-setup    install/fetch what all this needs (cross/setup.sh; idempotent)

CARGO ?= cargo
CROSS_TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
# The Debian architecture of each Rust target, and back.
CROSS_TRIPLE_armhf = armv7-unknown-linux-gnueabihf
CROSS_TRIPLE_arm64 = aarch64-unknown-linux-musl
CROSS_ARCHES = armhf arm64
CROSS_TRIPLES = $(foreach a,$(CROSS_ARCHES),$(CROSS_TRIPLE_$(a)))
cross_bin = $(CROSS_TARGET_DIR)/$(CROSS_TRIPLE_$(1))/release/event-notify
cross_image = $(CROSS_TARGET_DIR)/qemu/$(1)/initramfs$(2).cpio.gz

# `make test` (top-level Makefile) runs check-boards in its host lane (it reads the host's debug
# build), test-arm and qemu-test in its ARM lane.
EXTRA_TESTS += check-boards test-hot
EXTRA_TESTS_ARM += test-arm qemu-test

.PHONY: cross cross-small cross-sizes cross-setup cross-ready check-boards test-hot hot-profile test-arm qemu-test qemu-shell \
	$(foreach a,$(CROSS_ARCHES),test-arm-$(a) qemu-test-$(a) cross-$(a))

cross-setup:
	@sh cross/setup.sh

# What the targets below need, checked (and the guest parts fetched if missing), without apt.
cross-ready:
	@sh cross/setup.sh --no-install

# Both targets in one cargo run: cargo interleaves their compilations, so one target's long
# single-threaded LTO link overlaps the other's build (on 2 cores, ~a third off the wall time).
cross: cross-ready
	$(BUILD_NICE) $(CARGO) build --release $(foreach t,$(CROSS_TRIPLES),--target $(t))
	@sh cross/sizes.sh --show $(foreach a,$(CROSS_ARCHES),$(a)=$(call cross_bin,$(a)))

define cross_arch_rules
cross-$(1): cross-ready
	$$(CARGO) build --release --target $$(CROSS_TRIPLE_$(1))

# Tests are built in the dev profile (opt-level 1, see Cargo.toml): under emulation the suite's
# run time is dominated by process start-up, and an LTO release build would cost more to compile
# than it saves.
test-arm-$(1): cross-ready
	$$(CARGO) test --no-fail-fast --target $$(CROSS_TRIPLE_$(1))

qemu-test-$(1): cross-$(1)
	@sh cross/qemu/mkimage.sh $(1) $(call cross_bin,$(1)) $(call cross_image,$(1),-test)
	@sh cross/qemu/run.sh $(1) $(call cross_image,$(1),-test)
endef
$(foreach a,$(CROSS_ARCHES),$(eval $(call cross_arch_rules,$(a))))

# One cargo run for both targets (as `cross`): the builds overlap, then each target's tests run
# under its own qemu-user runner. The unit and integration tests only: the doc examples run on
# the host (`make test-host`), and rustdoc in a run with two targets is not given the build
# script's OUT_DIR (the admin page's compressed assets), so they would not compile here. (The
# binary's own target has no tests: `test = false` in Cargo.toml.)
test-arm: cross-ready
	$(BUILD_NICE) $(CARGO) test --no-run --lib --tests $(foreach t,$(CROSS_TRIPLES),--target $(t))
	$(CARGO) test --no-fail-fast --lib --tests $(foreach t,$(CROSS_TRIPLES),--target $(t))

qemu-test: cross
	@set -e; $(foreach a,$(CROSS_ARCHES),\
		sh cross/qemu/mkimage.sh $(a) $(call cross_bin,$(a)) $(call cross_image,$(a),-test); \
		sh cross/qemu/run.sh $(a) $(call cross_image,$(a),-test);)
	@echo "qemu-test: all images passed"

ARCH ?= armhf
qemu-shell: cross-$(ARCH)
	@sh cross/qemu/mkimage.sh $(ARCH) $(call cross_bin,$(ARCH)) $(call cross_image,$(ARCH),-shell) --shell
	@sh cross/qemu/run.sh $(ARCH) $(call cross_image,$(ARCH),-shell) --shell

# cross/hot/link-gcc (the handset builds' linker) on a small C program: layout, same behaviour as
# a plain link, a plain link when its tools are missing or fail (seconds).
test-hot:
	@sh cross/hot/test.sh

# The list of functions the handset builds place first (cross/hot/functions.txt), made again
# under valgrind from two x86_64 builds (about five minutes): after large code changes.
hot-profile:
	@sh cross/hot/profile.sh

check-boards:
	$(CARGO) build --quiet --bin event-notify
	@sh cross/check-boards.sh $(CROSS_TARGET_DIR)/debug/event-notify

# The flash-size build: std rebuilt for size with nightly, panic=immediate-abort (cross/small.sh).
cross-small: cross-ready
	@sh cross/small.sh $(CROSS_TRIPLE_armhf) notls

cross-sizes: cross-ready
	@sh cross/sizes.sh --build
