//! The integration tests, one test binary (`cargo test --test it`): each file of this directory
//! is a module, so a test's full name is `<file>::<test>` (`cargo test --test it daemon::` runs
//! the tests of daemon.rs). One binary instead of one per file: `make test` builds the suite for
//! three targets (host, armv7, aarch64), and each binary pulled in the library, its dependencies
//! and its own copy of common/ again.
//!
//! The modules share one process. None of them sets an environment variable, a signal handler,
//! the working directory or a process-wide limit; each makes its own temporary directory
//! (common::TempDir) and binds port 0 (the one fixed port, faults.rs's 127.0.0.1:80, is tried and
//! skipped if taken). A new test must keep it that way, or go in a file of its own in tests/
//! (cargo builds each tests/*.rs as a binary of its own).

mod common;
#[path = "../c/support.rs"]
mod support;

mod admin;
mod baresip;
mod check_boards;
mod daemon;
mod faults;
mod ffi_c;
mod ffi_header;
mod fuzz_corpus;
#[cfg(feature = "import")]
mod import;
mod interface;
mod keepalive;
mod loop_bounds;
mod loop_sender;
#[cfg(feature = "tls")]
mod loop_tls;
mod names;
mod receiver_selftest;
mod signing;
mod socket_lines;
mod spool;
mod template_cases;
mod tidy;
