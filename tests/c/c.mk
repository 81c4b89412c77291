# tests/c/c.mk: the C API (include/event_notify.h) — its libraries and its tests.
# Included by the top-level Makefile (paths relative to the repository root); see
# README.md.
#
#   make lib-ffi        libevent_notify.a and .so for this machine: target/ffi/
#   make lib-ffi-arm    libevent_notify.a for the handset (armv7): target/armv7-unknown-linux-gnueabihf/ffi/
#   make test-c         the header check and the C program against a loopback receiver (host)
#   make test-c-arm     the C program cross-compiled for armv7, run under qemu-arm
#
# `make test` needs neither of the test targets: they are modules of the integration-test binary
# (tests/it/ffi_header.rs, tests/it/ffi_c.rs), run by test-host; test-arm runs them once more built
# for armv7.

CARGO ?= cargo
FFI_ARM_TARGET = armv7-unknown-linux-gnueabihf
FFI_TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)

.PHONY: lib-ffi lib-ffi-arm test-c test-c-arm

# The `ffi` profile is release with panic = "unwind", so the C API can catch a panic and return
# EN_E_PANIC (see Cargo.toml).
lib-ffi:
	$(CARGO) build --lib --profile ffi
	@ls -l $(FFI_TARGET_DIR)/ffi/libevent_notify.a $(FFI_TARGET_DIR)/ffi/libevent_notify.so

# cdylib is dropped for this target (+crt-static): cargo says so in a warning.
lib-ffi-arm:
	$(CARGO) build --lib --profile ffi --target $(FFI_ARM_TARGET)
	@ls -l $(FFI_TARGET_DIR)/$(FFI_ARM_TARGET)/ffi/libevent_notify.a

test-c:
	$(CARGO) test --test it -- ffi_header:: ffi_c:: --skip armv7

test-c-arm:
	$(CARGO) test --test it ffi_c::a_c_program_for_armv7
