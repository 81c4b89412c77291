//! Shared helpers for the integration tests (`mod common;` in each test file):
//!
//! - [`Receiver`]: a recording HTTP receiver on `127.0.0.1:0`, in-process, with scripted answers
//!   ([`Reply`]: status sequences, delays, hanging, closing, raw bytes), a port that can be down
//!   at first and come up later on the same number, connection counting (keep-alive reuse), a
//!   kept connection closed or spoiled between requests, and an HTTPS variant whose certificate
//!   comes from a CA generated per receiver ([`TestCa`]).
//! - [`Daemon`]: the real `event-notify run` as a child process with its config, socket and log in
//!   a private temp dir; `emit`, `status` (and [`stat`], [`status_when`] to read and wait for its
//!   figures), signals; killed on drop.
//! - [`TempDir`]: a unique directory removed on drop.
//!
//! Everything here touches only loopback. Helpers panic with what they saw when something does
//! not happen in time: a test helper's panic is the test's failure message.
// Each test binary uses its own subset of these helpers (and of the re-exports below).
#![allow(dead_code, unused_imports)]

mod arrivals;
mod daemon;
mod process;
mod receiver;
mod tls;

pub use arrivals::*;
pub use daemon::*;
pub use process::*;
pub use receiver::*;
pub use tls::*;

use event_notify::http::{self, Connection, HttpError, ReadError, Version};
use nix::sys::socket::SockaddrIn;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the helpers wait for something that should happen promptly before they give up.
pub const PATIENCE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Temporary directories

/// A fresh directory under the system temp dir, removed (with its contents) on drop.
/// Set `EN_KEEP_TEST_DIRS=1` to keep them for a post-mortem.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// `label` ends up in the name (keep it short: Unix socket paths are limited to 108 bytes).
    pub fn new(label: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let label: String = label
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .take(16)
            .collect();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("en-{label}-{}-{n}-{nanos:x}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `contents` to `name` in this directory, atomically (temp file then rename), so a
    /// process watching the file never reads half of it.
    pub fn write(&self, name: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
        let dest = self.join(name);
        let tmp = dest.with_extension("tmp-write");
        std::fs::write(&tmp, contents).expect("write temp file");
        std::fs::rename(&tmp, &dest).expect("rename temp file");
        dest
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("EN_KEEP_TEST_DIRS").is_some() {
            eprintln!("kept test dir {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Plain clients, for tests that poke a server by hand

/// Sends `raw` on a fresh connection and reads until the server closes (or 5 s pass).
pub fn http_exchange(addr: SocketAddr, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(raw).expect("send");
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    String::from_utf8_lossy(&got).into_owned()
}

/// Reads one answer head (up to the empty line) from `s`; empty if the connection closed first.
pub fn read_answer_head(s: &mut impl Read) -> String {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}
