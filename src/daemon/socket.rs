//! The Unix socket: binding, clients, one answer per line.

use super::*;

pub(super) struct Client {
    pub(super) stream: UnixStream,
    pub(super) buf: heapless::Vec<u8, MSG_CAP>,
    /// Skipping the rest of an over-long line.
    pub(super) discarding: bool,
    /// When it last sent something (or connected), for making room when full.
    pub(super) active_ms: u64,
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
                            if self.warn_refused.allow(now().ms, "socket clients closed") {
                                log::warn!("{MAX_CLIENTS} socket clients: closed the one idle the longest to make room");
                            }
                            self.clients.swap_remove(i);
                        }
                    }
                    self.clients.push(Client {
                        stream,
                        buf: heapless::Vec::new(),
                        discarding: false,
                        active_ms: now().ms,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("accept: {e}");
                    return;
                }
            }
        }
    }

    /// Reads what a client sent and answers each complete line. `false`: drop the client.
    pub(super) fn serve_client(&mut self, i: usize) -> bool {
        let mut chunk = [0u8; 1024];
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
            for &b in &chunk[..n] {
                let c = &mut self.clients[i];
                if c.discarding {
                    if b == b'\n' {
                        c.discarding = false;
                    }
                    continue;
                }
                if b == b'\n' {
                    let line = core::mem::take(&mut c.buf);
                    let reply = self.answer(&line);
                    if self.clients[i].stream.write_all(reply.as_bytes()).is_err() {
                        return false;
                    }
                    if self.stopping.is_some() {
                        return false;
                    }
                    continue;
                }
                if c.buf.push(b).is_err() {
                    c.buf.clear();
                    c.discarding = true;
                    let reply = self.refuse(WireError::TooLong);
                    if self.clients[i].stream.write_all(reply.as_bytes()).is_err() {
                        return false;
                    }
                }
            }
        }
    }

    pub(super) fn answer(&mut self, line: &[u8]) -> String {
        match wire::parse_request(line) {
            Ok(Request::Msg(m)) => format!("OK {}\n", self.handle_msg(&m)),
            Ok(Request::Ping) => "OK pong\n".into(),
            Ok(Request::Reload) => match self.reload(true) {
                Ok(()) => "OK reloaded\n".into(),
                Err(_) => "ERR invalid-config the new config is invalid; the running one stays (see the log)\n".into(),
            },
            Ok(Request::Status) => {
                let mut s = String::from("OK\n");
                self.write_status(&mut s);
                s.push('\n');
                s
            }
            Err(e) => self.refuse(e),
        }
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
