//! The Unix socket: binding, clients, one answer per line.

use super::*;

/// How much of a client's input is read at once.
const READ_CHUNK: usize = 1024;

/// Longest reply to an event line formatted on the stack (`OK derived=.. queued=..`; the
/// longest is about 50 bytes). A longer one would be formatted on the heap.
pub const REPLY_CAP: usize = 64;

/// A reply to one socket line: an event's short answer on the stack, a fixed text, or a long
/// one (status, errors) on the heap.
pub(super) enum Reply {
    Short(heapless::String<REPLY_CAP>),
    Static(&'static str),
    Long(String),
}

impl Reply {
    pub(super) fn as_str(&self) -> &str {
        match self {
            Reply::Short(s) => s,
            Reply::Static(s) => s,
            Reply::Long(s) => s,
        }
    }
}

pub(super) struct Client {
    pub(super) stream: UnixStream,
    pub(super) buf: heapless::Vec<u8, MSG_CAP>,
    /// Skipping the rest of an over-long line.
    pub(super) discarding: bool,
    /// When it last sent something (or connected), for making room when full.
    pub(super) active_ms: u64,
    /// The part of a reply the socket did not take yet. While it is not empty the client is
    /// polled for writing and nothing more is read from it: a client that writes faster than it
    /// reads is slowed down by its own socket buffer, never dropped. Holds at most one reply.
    pub(super) out: Vec<u8>,
    /// Bytes read but not yet answered (the rest of a chunk when a reply had to wait).
    pub(super) pending: heapless::Vec<u8, READ_CHUNK>,
}

impl Client {
    pub(super) fn new(stream: UnixStream, now_ms: u64) -> Client {
        Client {
            stream,
            buf: heapless::Vec::new(),
            discarding: false,
            active_ms: now_ms,
            out: Vec::new(),
            pending: heapless::Vec::new(),
        }
    }

    /// Whether it waits for the socket to take a reply (poll for writing, not reading).
    pub(super) fn blocked(&self) -> bool {
        !self.out.is_empty()
    }

    /// Writes what the socket takes of `out`. `Err`: the client is gone.
    fn flush(&mut self) -> io::Result<()> {
        while !self.out.is_empty() {
            match self.stream.write(&self.out) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sends a reply, keeping what the socket does not take now.
    fn reply(&mut self, text: &str) -> io::Result<()> {
        self.out.extend_from_slice(text.as_bytes());
        self.flush()
    }
}

pub(super) fn bind_socket(path: &Path) -> Result<UnixListener, DaemonError> {
    let err = |err| DaemonError::Socket {
        path: path.display().to_string(),
        err,
    };
    // Replace only a socket nobody answers; anything else at the path (a regular file, the
    // config itself, a folder) is refused, never deleted (issue 10 #6).
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "exists and is not a socket; refusing to replace it (choose another --socket path)",
            )));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "another daemon is listening on it",
            )));
        }
        std::fs::remove_file(path).map_err(err)?;
    }
    let l = UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(err)?;
    l.set_nonblocking(true).map_err(err)?;
    Ok(l)
}

impl Daemon {
    #[inline(never)] // see Daemon::main_loop
    pub(super) fn accept(&mut self) {
        let Some(l) = &self.listener else { return };
        loop {
            match l.accept() {
                Ok((stream, _)) => {
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    if self.clients.len() >= MAX_CLIENTS {
                        // Make room: close the client idle the longest (issue 10 #7).
                        let oldest =
                            (0..self.clients.len()).min_by_key(|&i| self.clients[i].active_ms);
                        if let Some(i) = oldest {
                            self.counters.busy += 1;
                            if self.warn_evicted.allow(now().ms, "socket clients closed") {
                                log::warn!("{MAX_CLIENTS} socket clients: closed the one idle the longest to make room");
                            }
                            self.clients.swap_remove(i);
                        }
                    }
                    self.clients.push(Client::new(stream, now().ms));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("accept: {e}");
                    return;
                }
            }
        }
    }

    /// Writes what waits for the client, then reads what it sent and answers each complete
    /// line, until it has nothing more to say or a reply must wait for its socket. `false`:
    /// drop the client.
    #[inline(never)] // see Daemon::main_loop
    pub(super) fn serve_client(&mut self, i: usize) -> bool {
        let Some(c) = self.clients.get_mut(i) else {
            return false;
        };
        if c.flush().is_err() {
            return false;
        }
        if c.blocked() {
            return true;
        }
        if !c.pending.is_empty() {
            // Moved out only when there is something: a take is a 1 KiB copy.
            let pending = core::mem::take(&mut c.pending);
            match self.answer_bytes(i, &pending) {
                Some(true) => {}
                Some(false) => return true,
                None => return false,
            }
        }
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            let Some(c) = self.clients.get_mut(i) else {
                return false;
            };
            c.active_ms = now().ms;
            let n = match c.stream.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            };
            match self.answer_bytes(i, &chunk[..n]) {
                Some(true) => {}
                Some(false) => return true,
                None => return false,
            }
            if n < READ_CHUNK {
                // The socket had no more than this: poll (level-triggered) reports the next
                // bytes, so the read that would only say EAGAIN is saved (one system call
                // per event line).
                return true;
            }
        }
    }

    /// Answers the complete lines in `bytes`. `Some(true)`: all taken; `Some(false)`: a reply
    /// waits for the socket, the rest is kept in `pending`; `None`: drop the client.
    ///
    /// A line that arrived whole is parsed where it lies in `bytes`; only the start of a line
    /// split between reads is copied into the client's buffer (`MSG_CAP` bytes: moving it out
    /// for every line cost more than the parse).
    fn answer_bytes(&mut self, i: usize, bytes: &[u8]) -> Option<bool> {
        let mut at = 0;
        while at < bytes.len() {
            let c = &mut self.clients[i];
            let rest = &bytes[at..];
            let nl = rest.iter().position(|&b| b == b'\n');
            let seg = &rest[..nl.unwrap_or(rest.len())];
            // Where the next line starts (past the LF), or the end of what was read.
            let next = at + nl.map_or(rest.len(), |n| n + 1);
            if c.discarding {
                if nl.is_some() {
                    c.discarding = false;
                }
                at = next;
                continue;
            }
            let reply = if c.buf.len() + seg.len() > MSG_CAP {
                // Longer than a line may be: refused now, the rest of it skipped.
                c.buf.clear();
                c.discarding = nl.is_none();
                Reply::Long(self.refuse(WireError::TooLong))
            } else if nl.is_none() {
                // Cannot fail: checked above.
                let _ = c.buf.extend_from_slice(seg);
                at = next;
                continue;
            } else if c.buf.is_empty() {
                self.answer(seg)
            } else {
                let _ = c.buf.extend_from_slice(seg);
                let line = core::mem::take(&mut c.buf);
                self.answer(&line)
            };
            at = next;
            let c = &mut self.clients[i];
            if c.reply(reply.as_str()).is_err() || self.stopping.is_some() {
                return None;
            }
            if c.blocked() {
                // `bytes` is at most one chunk, so the rest fits.
                let _ = c.pending.extend_from_slice(&bytes[at..]);
                return Some(false);
            }
        }
        Some(true)
    }

    pub(super) fn answer(&mut self, line: &[u8]) -> Reply {
        // One message kept for every line (a new `Msg` is 2.4 KiB to build and move); boxed so
        // that it can be taken out while `handle_msg` borrows the daemon.
        let mut msg = self
            .line_msg
            .take()
            .unwrap_or_else(|| Box::new(Msg::new(Kind::Boot)));
        let reply = match wire::parse_into(line, &mut msg) {
            Ok(Verb::Msg) => {
                let t = now();
                let a = self.handle_msg_at(&msg, t);
                // The notification goes to its worker before the client gets its `OK`: the
                // reply's write is not on the path of the request.
                self.dispatch(t);
                // Formatted on the stack: `format!` allocated and grew a String for every
                // message.
                let mut s = heapless::String::<REPLY_CAP>::new();
                match a.write_reply(&mut s) {
                    Ok(()) => Reply::Short(s),
                    Err(_) => Reply::Long(format!("OK {a}\n")),
                }
            }
            Ok(Verb::Ping) => Reply::Static("OK pong\n"),
            Ok(Verb::Reload) => Reply::Static(match self.reload(true) {
                Ok(()) => "OK reloaded\n",
                Err(_) => "ERR invalid-config the new config is invalid; the running one stays (see the log)\n",
            }),
            Ok(Verb::Status) => {
                let mut s = String::from("OK\n");
                self.write_status(&mut s);
                s.push('\n');
                Reply::Long(s)
            }
            Err(e) => Reply::Long(self.refuse(e)),
        };
        self.line_msg = Some(msg);
        reply
    }

    /// Counts and logs (rate-limited) a refused socket line; the `ERR` reply for it.
    fn refuse(&mut self, e: WireError) -> String {
        // A slot past the table (a new WireError given a slot but not listed in WIRE_ERRORS)
        // is not counted rather than a panic.
        if let Some(n) = self.counters.refused.get_mut(refused_index(e)) {
            *n += 1;
        }
        if self.warn_refused.allow(now().ms, "refused socket messages") {
            log::warn!("refused a socket message: {e}");
        }
        format!("ERR {} {e}\n", e.code())
    }
}
