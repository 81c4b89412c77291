//! The TCP transport under ureq (plain HTTP, and under rustls for HTTPS).
//!
//! ureq's own `TcpTransport` costs eight system calls per request on a kept connection beyond the
//! request's write and the response's read (strace, issue 15 item 5): its liveness probe of a
//! pooled connection (`is_open`, run when the connection goes back to the pool and again when it
//! is taken) switches the socket to non-blocking, reads, and switches it back (three calls, twice),
//! and the whole-attempt timeout is re-armed with `setsockopt` before every write and every read
//! because the time left is a little smaller each time (two more). Here the probe is one
//! `recv(MSG_PEEK | MSG_DONTWAIT)`, only when the connection is taken from the pool (see
//! [`TcpTransport::is_open`]), and a socket timeout is set only when the time left, rounded
//! down to [`TIMEOUT_STEP_MS`], changes: a quick exchange on a kept connection sets none.
//! Everything else is as ureq's: connect with the connect timeout shared between the addresses
//! of a name, `TCP_NODELAY`, the shutdown handle, the same buffers.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, ShutdownHandle,
    Transport,
};

/// The socket timeouts are set to the time left of the attempt rounded down to a multiple of
/// this, so the value (and the `setsockopt`) changes only when the attempt has used a step. An
/// attempt may end up to one step before its `timeout_ms`, never after it.
pub const TIMEOUT_STEP_MS: u64 = 10;

/// The shortest connect time given to one address of a name with several.
const MIN_PER_ADDRESS: Duration = Duration::from_millis(10);

/// Opens the TCP connection when no connector before it in the chain did (a CONNECT proxy).
#[derive(Debug, Default)]
pub(super) struct TcpConnector;

impl<In: Transport> Connector<In> for TcpConnector {
    type Out = Either<In, TcpTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        if let Some(c) = chained {
            return Ok(Some(Either::A(c)));
        }
        let stream = connect(details)?;
        if details.config.no_delay() {
            stream.set_nodelay(true)?;
        }
        let stream = Arc::new(stream);
        let handle: Weak<dyn ShutdownHandle> = Arc::downgrade(&stream) as Weak<dyn ShutdownHandle>;
        (details.register_shutdown)(handle)?;
        Ok(Some(Either::B(TcpTransport {
            stream,
            buffers: LazyBuffers::new(
                details.config.input_buffer_size(),
                details.config.output_buffer_size(),
            ),
            read_timeout: None,
            write_timeout: None,
            just_read: false,
        })))
    }
}

/// Tries the addresses in order; each gets an equal share of the connect time left (at least
/// [`MIN_PER_ADDRESS`]). A refusal or an unreachable address moves on to the next one.
fn connect(d: &ConnectionDetails) -> Result<TcpStream, ureq::Error> {
    let budget = d.timeout.not_zero();
    let start = Instant::now();
    let n = d.addrs.len();
    let mut last: Option<ureq::Error> = None;
    for (i, addr) in d.addrs.iter().enumerate() {
        let r = match budget {
            Some(b) => {
                let left = b.saturating_sub(start.elapsed());
                if left.is_zero() {
                    return Err(ureq::Error::Timeout(d.timeout.reason));
                }
                let share = (left / (n - i).max(1) as u32)
                    .max(MIN_PER_ADDRESS)
                    .min(left);
                TcpStream::connect_timeout(addr, share)
            }
            None => TcpStream::connect(addr),
        };
        match r {
            Ok(s) => return Ok(s),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) =>
            {
                last = Some(ureq::Error::Timeout(ureq::Timeout::Connect));
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::HostUnreachable
                        | io::ErrorKind::NetworkUnreachable
                        | io::ErrorKind::AddrNotAvailable
                ) =>
            {
                last = Some(e.into());
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::ConnectionRefused).into()))
}

pub(super) struct TcpTransport {
    /// In an `Arc` so the agent's shutdown handle (weak) can shut it down.
    stream: Arc<TcpStream>,
    buffers: LazyBuffers,
    /// The socket timeouts as last set (`None`: none set, or blocking without a limit).
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    /// A read was the last thing done: the next liveness probe is ureq's as the connection goes
    /// back to the pool, right after the response.
    just_read: bool,
}

impl std::fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpTransport")
            .field("peer", &self.stream.peer_addr().ok())
            .finish()
    }
}

/// The socket timeout for an I/O with `t` left: `None` when there is no limit, the time left
/// rounded down to [`TIMEOUT_STEP_MS`] (or itself when under one step); a timeout error when
/// nothing is left.
pub(super) fn socket_timeout(t: NextTimeout) -> Result<Option<Duration>, ureq::Error> {
    if t.after.is_not_happening() {
        return Ok(None);
    }
    let left = *t.after;
    if left.is_zero() {
        return Err(ureq::Error::Timeout(t.reason));
    }
    let step = TIMEOUT_STEP_MS as u128;
    let ms = left.as_millis();
    Ok(Some(if ms >= step {
        Duration::from_millis((ms - ms % step) as u64)
    } else {
        left
    }))
}

/// A timed-out socket read or write (`EAGAIN` under `SO_RCVTIMEO`) is ureq's timeout.
fn io_error(e: io::Error, t: NextTimeout) -> ureq::Error {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ureq::Error::Timeout(t.reason),
        _ => e.into(),
    }
}

impl Transport for TcpTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let t = timeout.for_write();
        let due = socket_timeout(t)?;
        if due != self.write_timeout {
            self.stream.set_write_timeout(due)?;
            self.write_timeout = due;
        }
        let out = self
            .buffers
            .output()
            .get(..amount)
            .ok_or_else(|| io::Error::other("output beyond the buffer"))?;
        (&*self.stream).write_all(out).map_err(|e| io_error(e, t))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let t = timeout.for_read();
        let due = socket_timeout(t)?;
        if due != self.read_timeout {
            self.stream.set_read_timeout(due)?;
            self.read_timeout = due;
        }
        let started = Instant::now();
        let stream = Arc::clone(&self.stream);
        let buf = self.buffers.input_append_buf();
        let n = loop {
            match (&*stream).read(buf) {
                // Linux does not restart a socket read with a timeout after a signal: read
                // again with what is left.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    if let Some(d) = due {
                        let left = d.saturating_sub(started.elapsed());
                        if left.is_zero() {
                            return Err(ureq::Error::Timeout(t.reason));
                        }
                        stream.set_read_timeout(Some(left))?;
                        self.read_timeout = Some(left);
                    }
                }
                Err(e) => return Err(io_error(e, t)),
                Ok(n) => break n,
            }
        };
        self.buffers.input_appended(n);
        self.just_read = n > 0;
        Ok(n > 0)
    }

    /// One `recv(MSG_PEEK | MSG_DONTWAIT)`: open while there is nothing to read. End of
    /// stream, bytes nobody asked for, or an error: not reusable.
    ///
    /// ureq probes twice per request: when the connection goes back to the pool (right after
    /// the response was read) and when it is taken out again. The first probe is answered
    /// without a system call: what it could find (bytes after the response, a close) is still
    /// there for the second one, which always runs before the connection is used again.
    fn is_open(&mut self) -> bool {
        use nix::sys::socket::{recv, MsgFlags};
        if std::mem::take(&mut self.just_read) {
            return true;
        }
        let mut b = [0u8; 1];
        loop {
            match recv(
                self.stream.as_raw_fd(),
                &mut b,
                MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
            ) {
                Err(nix::errno::Errno::EAGAIN) => return true,
                Err(nix::errno::Errno::EINTR) => continue,
                _ => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::unversioned::transport::time::Duration as UDuration;

    fn left(ms: Option<u64>) -> NextTimeout {
        NextTimeout {
            after: ms.map_or(UDuration::NotHappening, UDuration::from_millis),
            reason: ureq::Timeout::Global,
            per_read: None,
            per_write: None,
        }
    }

    #[test]
    fn socket_timeouts_round_down_never_up() {
        assert_eq!(socket_timeout(left(None)).ok(), Some(None));
        assert!(matches!(
            socket_timeout(left(Some(0))),
            Err(ureq::Error::Timeout(ureq::Timeout::Global))
        ));
        let ms = |v| Some(Some(Duration::from_millis(v)));
        assert_eq!(socket_timeout(left(Some(3))).ok(), ms(3));
        assert_eq!(socket_timeout(left(Some(10))).ok(), ms(10));
        assert_eq!(socket_timeout(left(Some(2999))).ok(), ms(2990));
        assert_eq!(socket_timeout(left(Some(2991))).ok(), ms(2990));
        assert_eq!(socket_timeout(left(Some(3000))).ok(), ms(3000));
    }
}
