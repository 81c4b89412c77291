//! A destination given by host name (daemon::deliver's caching resolver): the name is looked up
//! through a hosts file bind-mounted over /etc/hosts inside a mount namespace this test makes
//! (never the machine's own /etc/hosts), the server "moves" to another address, and the daemon
//! follows it once the old connection fails. And a lookup that hangs (a name server that never
//! answers, named by a resolv.conf in the daemon's namespace) holds only its own destination.
//!
//! x86_64 only: it runs the daemon under `unshare` (root, host tools), which the qemu-user runs
//! of the ARM targets cannot wrap.
#![cfg(target_arch = "x86_64")]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_event-notify");
const NAME: &str = "moving.names.test";

/// A keep-alive HTTP receiver that records each request's target; `stop` closes the listener
/// and every connection it accepted.
struct Recv {
    targets: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl Recv {
    fn start(addr: &str) -> Recv {
        let l = TcpListener::bind(addr).expect("bind receiver");
        l.set_nonblocking(true).expect("nonblocking");
        let port = l.local_addr().expect("addr").port();
        let r = Recv {
            targets: Arc::default(),
            stop: Arc::default(),
            conns: Arc::default(),
            port,
            accepted: Arc::default(),
        };
        let (targets, stop, conns, accepted) = (
            Arc::clone(&r.targets),
            Arc::clone(&r.stop),
            Arc::clone(&r.conns),
            Arc::clone(&r.accepted),
        );
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((s, _)) => {
                        accepted.fetch_add(1, Ordering::SeqCst);
                        let _ = s.set_nonblocking(false);
                        conns.lock().unwrap().push(s.try_clone().unwrap());
                        let targets = Arc::clone(&targets);
                        thread::spawn(move || serve(s, targets));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        r
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        // Let the accept loop drop the listener.
        thread::sleep(Duration::from_millis(50));
    }

    fn wait_for(&self, n: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self
                .targets
                .lock()
                .unwrap()
                .iter()
                .any(|t| t.contains(&format!("n={n}")))
            {
                return true;
            }
            thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

fn serve(s: TcpStream, targets: Arc<Mutex<Vec<String>>>) {
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" || h == "\n" {
                break;
            }
        }
        targets.lock().unwrap().push(target);
        if w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

struct Daemon {
    child: Child,
    socket: PathBuf,
    dir: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The daemon as PID 1 of its own PID and mount namespaces (`unshare`, root), each `(file,
/// path)` bind-mounted over `path` there only (never over the machine's own files); waits for its
/// socket.
fn start_in_namespace(dir: &Path, config: &Path, mounts: &[(&Path, &str)]) -> Daemon {
    let socket = dir.join("s.sock");
    let mut script = String::new();
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--pid",
        "--fork",
        "--kill-child=SIGKILL",
        "--mount-proc",
        "sh",
        "-c",
    ]);
    for (i, (_, target)) in mounts.iter().enumerate() {
        script.push_str(&format!("mount --bind \"${}\" {target} && ", i + 1));
    }
    script.push_str(&format!("shift {} && exec \"$@\"", mounts.len()));
    cmd.arg(script).arg("sh");
    for (file, _) in mounts {
        cmd.arg(file);
    }
    let child = cmd
        .arg(BIN)
        .arg("run")
        .arg("--config")
        .arg(config)
        .arg("--socket")
        .arg(&socket)
        .stdin(Stdio::null())
        .spawn()
        .expect("unshare (root, util-linux) runs the daemon in its own namespaces");
    let d = Daemon {
        child,
        socket,
        dir: dir.to_path_buf(),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !d.socket.exists() {
        assert!(Instant::now() < deadline, "daemon did not start");
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(100));
    d
}

fn emit(socket: &Path, id: &str) {
    emit_event(socket, "incoming_call", id);
}

fn emit_event(socket: &Path, event: &str, id: &str) {
    let st = Command::new(BIN)
        .args(["emit", event, &format!("call_id={id}"), "--socket"])
        .arg(socket)
        .stdin(Stdio::null())
        .status()
        .expect("emit");
    assert!(st.success(), "emit {event} {id}: {st}");
}

#[test]
fn a_host_name_is_resolved_in_a_namespace_and_followed_when_the_server_moves() {
    let a = Recv::start("127.0.0.1:0");
    // The same port on another loopback address: the server after its move.
    let b = Recv::start(&format!("127.0.0.2:{}", a.port));
    let dir = std::env::temp_dir().join(format!("en-names-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, format!("127.0.0.1 {NAME}\n")).unwrap();
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"events": {{"incoming_call": "http://{NAME}:{}/in?n=$call_id"}},
                "delivery": {{"backoff_initial_ms": 100, "backoff_max_ms": 200, "connect_timeout_ms": 1000}}}}"#,
            a.port
        ),
    )
    .unwrap();
    let d = start_in_namespace(&dir, &config, &[(&hosts, "/etc/hosts")]);
    emit(&d.socket, "1");
    assert!(a.wait_for("1"), "not delivered by name to 127.0.0.1");
    emit(&d.socket, "2");
    assert!(a.wait_for("2"), "second not delivered");
    assert_eq!(
        a.accepted.load(Ordering::SeqCst),
        1,
        "keep-alive: one connection"
    );

    // The server moves: the name now means 127.0.0.2 (the file rewritten in place, so the
    // bind mount shows it), and the old address stops answering.
    std::fs::write(&hosts, format!("127.0.0.2 {NAME}\n")).unwrap();
    a.stop();
    emit(&d.socket, "3");
    assert!(
        b.wait_for("3"),
        "the daemon did not follow the name to its new address"
    );
    assert!(
        !a.targets.lock().unwrap().iter().any(|t| t.contains("n=3")),
        "delivered to the old address"
    );
    b.stop();
}

/// A name server that takes queries and never answers, on a loopback address of its own (port
/// 53 is what resolv.conf can name). Counts the queries.
fn silent_dns() -> (std::net::UdpSocket, String) {
    for last in [53u8, 54, 55, 56, 57] {
        let ip = format!("127.0.0.{last}");
        if let Ok(s) = std::net::UdpSocket::bind(format!("{ip}:53")) {
            return (s, ip);
        }
    }
    panic!("no free 127.0.0.x:53 for the silent name server");
}

#[test]
fn a_lookup_that_hangs_holds_only_its_own_destination() {
    // The name's lookup goes to a DNS server that never answers (resolv.conf in the daemon's
    // mount namespace: one attempt, 4 s); meanwhile another destination, an IP literal, must
    // be delivered at once.
    let (dns, dns_ip) = silent_dns();
    dns.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let fast = Recv::start("127.0.0.1:0");
    let dir = std::env::temp_dir().join(format!("en-names-hang-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let resolv = dir.join("resolv.conf");
    std::fs::write(
        &resolv,
        format!("nameserver {dns_ip}\noptions timeout:4 attempts:1\n"),
    )
    .unwrap();
    // No entry for the name: the lookup goes past the hosts file to the name server.
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"events": {{"incoming_call": "http://hangs.names.test:9/in?n=$call_id",
                             "outgoing_call": "http://127.0.0.1:{}/out?n=$call_id"}},
                "delivery": {{"connect_timeout_ms": 1000}}}}"#,
            fast.port
        ),
    )
    .unwrap();
    let d = start_in_namespace(
        &dir,
        &config,
        &[(&resolv, "/etc/resolv.conf"), (&hosts, "/etc/hosts")],
    );

    emit_event(&d.socket, "incoming_call", "1");
    // The lookup has started: its query reached the silent server.
    let mut q = [0u8; 512];
    let got = dns.recv_from(&mut q);
    assert!(
        got.is_ok(),
        "the name was not looked up through the namespace's resolv.conf"
    );
    let t0 = Instant::now();
    emit_event(&d.socket, "outgoing_call", "2");
    assert!(
        fast.wait_for("2"),
        "the other destination was not delivered"
    );
    let took = t0.elapsed();
    assert!(
        took < Duration::from_millis(1500),
        "the other destination waited {took:?} behind a hanging lookup (timeout 4 s)"
    );
    fast.stop();
}

/// `RESOLVE_TTL_MS` (src/daemon/deliver.rs): a resolved name is used this long.
const RESOLVE_TTL: Duration = Duration::from_millis(60_000);

#[test]
fn a_name_is_looked_up_again_after_its_time_while_its_connection_is_in_use() {
    // The name moves to another address while the old server keeps answering: no connection
    // fails, and one notification every 5 s keeps the connection from going idle. Once the
    // lookup is older than its time (60 s), the next notification must go to the new address.
    let a = Recv::start("127.0.0.1:0");
    let b = Recv::start(&format!("127.0.0.2:{}", a.port));
    let dir = std::env::temp_dir().join(format!("en-names-ttl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, format!("127.0.0.1 {NAME}\n")).unwrap();
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"events": {{"incoming_call": "http://{NAME}:{}/in?n=$call_id"}}}}"#,
            a.port
        ),
    )
    .unwrap();
    let d = start_in_namespace(&dir, &config, &[(&hosts, "/etc/hosts")]);
    // The lookup happens for the first notification, after this instant.
    let looked_up = Instant::now();
    emit(&d.socket, "0");
    assert!(a.wait_for("0"), "not delivered by name to 127.0.0.1");
    std::fs::write(&hosts, format!("127.0.0.2 {NAME}\n")).unwrap();

    let mut k = 1;
    // Well inside the name's time: the kept connection to the old address.
    while looked_up.elapsed() < RESOLVE_TTL - Duration::from_secs(8) {
        thread::sleep(Duration::from_secs(5));
        emit(&d.socket, &k.to_string());
        assert!(
            a.wait_for(&k.to_string()),
            "notification {k} ({:?} after the lookup) not at the old address",
            looked_up.elapsed()
        );
        k += 1;
    }
    // Past it (and the daemon's lookup was no earlier than `looked_up`).
    while looked_up.elapsed() < RESOLVE_TTL + Duration::from_secs(1) {
        let left = (RESOLVE_TTL + Duration::from_secs(1)).saturating_sub(looked_up.elapsed());
        thread::sleep(Duration::from_secs(3).min(left));
        emit(&d.socket, &k.to_string());
        k += 1;
    }
    let last = (k - 1).to_string();
    assert!(
        b.wait_for(&last),
        "notification {last}, {:?} after the lookup, did not reach the name's new address (the kept connection was used past the name's time)",
        looked_up.elapsed()
    );
    assert_eq!(
        a.accepted.load(Ordering::SeqCst),
        1,
        "the old address: one kept connection, never reopened"
    );
    assert!(
        !a.targets
            .lock()
            .unwrap()
            .iter()
            .any(|t| t.ends_with(&format!("n={last}"))),
        "the last notification also reached the old address"
    );
    a.stop();
    b.stop();
    drop(d);
}
