//! The I/O loop: connect to ctrl_tcp, read netstrings, feed the mapper, hand each `Msg` on,
//! send the mapper's queries, reconnect with capped back-off.

use crate::core::hook::Msg;
use serde_json::Value as Json;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::*;

/// Counters of the adapter, shared with the daemon (`status`).
#[derive(Debug, Default)]
pub struct AdapterStats {
    /// ctrl_tcp messages received (events and answers).
    pub received: AtomicU64,
    /// Events (or answers) that gave at least one message.
    pub mapped: AtomicU64,
    /// Messages handed to the engine.
    pub msgs: AtomicU64,
    /// Events of a type the mapper does not know, and answers nobody asked for.
    pub ignored: AtomicU64,
    /// Bad netstrings, oversized ones, JSON that does not parse, query time-outs.
    pub errors: AtomicU64,
    /// Connections made after the first one.
    pub reconnects: AtomicU64,
    pub connected: AtomicBool,
}

/// A copy of [`AdapterStats`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdapterCounts {
    pub received: u64,
    pub mapped: u64,
    pub msgs: u64,
    pub ignored: u64,
    pub errors: u64,
    pub reconnects: u64,
    pub connected: bool,
}

impl AdapterStats {
    pub fn snapshot(&self) -> AdapterCounts {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        AdapterCounts {
            received: g(&self.received),
            mapped: g(&self.mapped),
            msgs: g(&self.msgs),
            ignored: g(&self.ignored),
            errors: g(&self.errors),
            reconnects: g(&self.reconnects),
            connected: self.connected.load(Ordering::Relaxed),
        }
    }
}

fn bump(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

/// Follows the baresip at `addr` (`HOST:PORT` of its `ctrl_tcp_listen`) until `stop` is set or
/// the sink returns `false` (the daemon is gone). Blocking: run it in a thread of its own.
/// Reconnects with back-off from [`BACKOFF_INITIAL_MS`] doubling to [`BACKOFF_MAX_MS`].
pub fn run_adapter(
    addr: &str,
    sink: &mut dyn FnMut(Msg) -> bool,
    stop: &AtomicBool,
    stats: &AdapterStats,
) {
    let start = Instant::now();
    let now_ms = || start.elapsed().as_millis() as u64;
    let mut mapper = Mapper::new();
    let mut decoder = Decoder::new();
    let mut backoff = BACKOFF_INITIAL_MS;
    let mut connections = 0u64;
    let mut last_error = std::string::String::new();
    while !stop.load(Ordering::Relaxed) {
        match connect(addr) {
            Ok(stream) => {
                log::info!("baresip: connected to ctrl_tcp at {addr}");
                last_error.clear();
                if connections > 0 {
                    bump(&stats.reconnects);
                }
                connections += 1;
                backoff = BACKOFF_INITIAL_MS;
                stats.connected.store(true, Ordering::Relaxed);
                decoder.reset();
                mapper.connected();
                let r = session(
                    stream,
                    &mut mapper,
                    &mut decoder,
                    sink,
                    stop,
                    stats,
                    &now_ms,
                );
                stats.connected.store(false, Ordering::Relaxed);
                match r {
                    Ok(Some(())) => return,
                    Ok(None) => log::warn!("baresip: lost ctrl_tcp at {addr}: closed by baresip"),
                    Err(e) => log::warn!("baresip: lost ctrl_tcp at {addr}: {e}"),
                }
            }
            Err(e) => {
                // Log a refused connection once, not at every retry.
                let text = e.to_string();
                if text != last_error {
                    log::warn!("baresip: cannot connect to ctrl_tcp at {addr}: {text} (retrying)");
                    last_error = text;
                }
            }
        }
        let until = Instant::now() + Duration::from_millis(backoff);
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(READ_TICK_MS.min(backoff)));
        }
        backoff = (backoff * 2).min(BACKOFF_MAX_MS);
    }
}

fn connect(addr: &str) -> io::Result<TcpStream> {
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, Duration::from_millis(CONNECT_TIMEOUT_MS)) {
            Ok(s) => {
                s.set_read_timeout(Some(Duration::from_millis(READ_TICK_MS)))?;
                s.set_write_timeout(Some(Duration::from_millis(CONNECT_TIMEOUT_MS)))?;
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// One connection. `Ok(Some(()))`: stop; `Ok(None)`: baresip closed it; `Err`: I/O or framing.
fn session(
    mut stream: TcpStream,
    mapper: &mut Mapper,
    decoder: &mut Decoder,
    sink: &mut dyn FnMut(Msg) -> bool,
    stop: &AtomicBool,
    stats: &AdapterStats,
    now_ms: &dyn Fn() -> u64,
) -> io::Result<Option<()>> {
    let mut sink_open = true;
    loop {
        if stop.load(Ordering::Relaxed) || !sink_open {
            return Ok(Some(()));
        }
        let timeouts = mapper.stats.query_timeouts;
        if let Some(q) = mapper.poll_query(now_ms()) {
            log::debug!("baresip: asking {}", q.kind.command());
            stream.write_all(netstring(&q.json()).as_bytes())?;
        }
        if mapper.stats.query_timeouts != timeouts {
            bump(&stats.errors);
        }
        let n = match stream.read(decoder.spare()) {
            Ok(0) => return Ok(None),
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        decoder.filled(n);
        while let Some(frame) = decoder.next_frame() {
            let frame = match frame {
                Ok(f) => f,
                Err(e) => {
                    bump(&stats.errors);
                    log::warn!("baresip: {e}");
                    if e.is_fatal() {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                    }
                    continue;
                }
            };
            bump(&stats.received);
            let json: Json = match serde_json::from_slice(frame) {
                Ok(j) => j,
                Err(e) => {
                    bump(&stats.errors);
                    log::warn!("baresip: message is not JSON: {e}");
                    continue;
                }
            };
            log::debug!("baresip: {json}");
            let outcome = mapper.input(&json, &mut |m| {
                bump(&stats.msgs);
                log::debug!("baresip: -> {:?} {:?}", m.kind, m.vars);
                sink_open &= sink(m);
            });
            match outcome {
                Handled::Ignored => bump(&stats.ignored),
                Handled::Event(n) | Handled::Answer(n) if n > 0 => bump(&stats.mapped),
                Handled::Event(_) | Handled::Answer(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::mapper::tests::{out_vars, show, trace};
    use super::*;
    use std::string::{String as Text, ToString};
    use std::vec::Vec as StdVec;
    // --- the I/O loop against a fake ctrl_tcp on loopback

    #[test]
    fn adapter_maps_reconnects_and_asks() {
        use std::net::TcpListener;
        use std::sync::{mpsc, Arc};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let lines = trace(include_str!("../../tests/sip/traces/out_busy.txt"));
        let events: StdVec<Text> = lines.iter().map(|j| j.to_string()).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(AdapterStats::default());
        let (tx, rx) = mpsc::channel::<Text>();
        let adapter = {
            let (stop, stats, addr) = (Arc::clone(&stop), Arc::clone(&stats), addr.clone());
            std::thread::spawn(move || {
                run_adapter(&addr, &mut |m| tx.send(show(&m)).is_ok(), &stop, &stats);
            })
        };
        // First connection: the dial, then an oversized netstring, then baresip "restarts".
        let (mut c, _) = listener.accept().unwrap();
        c.write_all(netstring(&events[0]).as_bytes()).unwrap();
        let mut buf = [0u8; 256];
        let n = c.read(&mut buf).unwrap();
        let asked = std::str::from_utf8(&buf[..n]).unwrap();
        assert_eq!(
            asked,
            netstring("{\"command\":\"callstat\",\"token\":\"en-1\"}")
        );
        let big = "x".repeat(NETSTRING_CAP + 10);
        c.write_all(netstring(&big).as_bytes()).unwrap();
        c.write_all(b"8:not json,").unwrap();
        drop(c);
        // Second connection: the rest of the call, split into small writes.
        let (mut c, _) = listener.accept().unwrap();
        let rest: Text = events[1..].iter().map(|e| netstring(e)).collect();
        for chunk in rest.as_bytes().chunks(7) {
            c.write_all(chunk).unwrap();
        }
        let v = out_vars("5336824235ced67b");
        let want = [
            format!("Call(Calling) {v}"),
            format!("Call(Ringing) {v}"),
            format!("Call(Ended) {v}"),
        ];
        for w in &want {
            assert_eq!(&rx.recv_timeout(Duration::from_secs(5)).unwrap(), w);
        }
        assert!(stats.snapshot().connected);
        stop.store(true, Ordering::Relaxed);
        adapter.join().unwrap();
        let s = stats.snapshot();
        assert_eq!(s.reconnects, 1);
        assert_eq!(s.received, 4); // the dial, the one that is not JSON, ringing, closed
        assert_eq!(s.errors, 2); // the oversized netstring, the JSON that is not
        assert_eq!(s.mapped, 2);
        assert_eq!(s.msgs, 3);
        assert!(!s.connected);
    }
}
