//! The reference client of the socket wire format (what `emit` and `status` use).

use crate::core::wire::{self, MSG_CAP};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default socket path when neither `--socket`, `$EVENT_NOTIFY_SOCKET` nor a board gives one.
pub const DEFAULT_SOCKET: &str = "/run/event-notify.sock";
/// How long a client waits for the daemon's reply.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// `--socket`, else `$EVENT_NOTIFY_SOCKET`, else the board's, else [`DEFAULT_SOCKET`].
pub fn socket_path(flag: Option<&str>, board: Option<&str>) -> PathBuf {
    flag.map(PathBuf::from)
        .or_else(|| std::env::var_os("EVENT_NOTIFY_SOCKET").map(PathBuf::from))
        .or_else(|| board.map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the daemon at {0}: {1}")]
    Unreachable(String, io::Error),
    #[error("the daemon at {0} did not answer: {1}")]
    NoReply(String, io::Error),
}

/// Builds a request line: `EN1 VERB key=value ...` with values percent-encoded.
pub fn request_line<'a>(
    verb: &str,
    fields: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    let mut line = format!("{} {verb}", wire::VERSION);
    for (k, v) in fields {
        line.push(' ');
        line.push_str(k);
        line.push('=');
        let _ = wire::encode_value(v, &mut line);
    }
    line.push('\n');
    line
}

/// A connection to the daemon.
pub struct Client {
    path: PathBuf,
    reader: BufReader<UnixStream>,
}

impl Client {
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let s = UnixStream::connect(path)
            .map_err(|e| ClientError::Unreachable(path.display().to_string(), e))?;
        let _ = s.set_read_timeout(Some(REPLY_TIMEOUT));
        let _ = s.set_write_timeout(Some(REPLY_TIMEOUT));
        Ok(Client {
            path: path.to_owned(),
            reader: BufReader::with_capacity(MSG_CAP, s),
        })
    }

    /// Sends one request line and returns the first reply line (without LF).
    pub fn request(&mut self, line: &str) -> Result<String, ClientError> {
        let p = self.path.display().to_string();
        self.reader
            .get_mut()
            .write_all(line.as_bytes())
            .map_err(|e| ClientError::NoReply(p.clone(), e))?;
        self.read_line()
    }

    /// Reads one reply line.
    pub fn read_line(&mut self) -> Result<String, ClientError> {
        let p = self.path.display().to_string();
        let mut reply = String::new();
        match self.reader.read_line(&mut reply) {
            Ok(0) => Err(ClientError::NoReply(
                p,
                io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"),
            )),
            Ok(_) => Ok(reply.trim_end_matches(['\n', '\r']).to_string()),
            Err(e) => Err(ClientError::NoReply(p, e)),
        }
    }

    /// `status`: the lines after `OK` up to the empty line.
    pub fn status(&mut self) -> Result<Vec<String>, ClientError> {
        let first = self.request(&format!("{} status\n", wire::VERSION))?;
        let mut lines = Vec::new();
        if first != "OK" {
            lines.push(first);
            return Ok(lines);
        }
        loop {
            let l = self.read_line()?;
            if l.is_empty() {
                return Ok(lines);
            }
            lines.push(l);
        }
    }
}
