//! `$phone_ip` follows the interface: the daemon reads it once and again after the kernel reports
//! a link or address change (an rtnetlink watch), not for every message.
//!
//! The daemon and its receiver (`event-notify listen`) run in a network namespace the test makes
//! (`unshare -n`, root); the test changes the namespace's loopback addresses with `nsenter ... ip`
//! and talks to the daemon over its Unix socket (a path: the same in every network namespace).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_event-notify");
const PORT: u16 = 8099;

struct Ns {
    daemon: Child,
    dir: PathBuf,
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Ns {
    fn socket(&self) -> PathBuf {
        self.dir.join("s.sock")
    }

    fn ip(&self, args: &[&str]) {
        let st = Command::new("nsenter")
            .args(["-t", &self.daemon.id().to_string(), "-n", "ip"])
            .args(args)
            .status()
            .expect("nsenter (util-linux) and ip (iproute2)");
        assert!(st.success(), "ip {args:?}: {st}");
    }

    fn emit(&self, id: &str) {
        let st = Command::new(BIN)
            .args([
                "emit",
                "incoming_call",
                &format!("call_id={id}"),
                "--socket",
            ])
            .arg(self.socket())
            .stdin(Stdio::null())
            .status()
            .expect("emit");
        assert!(st.success(), "emit {id}: {st}");
    }

    /// The query of the request that carried `id=ID`, once it has arrived.
    fn arrived(&self, id: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        let want = format!("id={id}&");
        loop {
            let got = std::fs::read_to_string(self.dir.join("got")).unwrap_or_default();
            if let Some(line) = got.lines().find(|l| l.contains(&want)) {
                return line.to_string();
            }
            assert!(Instant::now() < deadline, "id={id} never arrived:\n{got}");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

fn start(dir: &Path) -> Ns {
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"events": {{"incoming_call": "10.77.0.1:{PORT}/in?id=$call_id&ip=$phone_ip"}},
                "device": {{"interface": "lo"}}}}"#
        ),
    )
    .unwrap();
    // Inside the test's own network namespace (`unshare -n` below): 10.77.0.1 is an address
    // of that namespace's loopback, reachable from nowhere else.
    let script = "ip link set lo up && ip addr add 10.77.0.1/8 dev lo && \
                  { \"$0\" listen --bind 10.77.0.1:$1 > \"$2/got\" 2>&1 & } && \
                  exec \"$0\" run --config \"$2/config.json\" --socket \"$2/s.sock\"";
    let daemon = Command::new("unshare")
        .args(["-n", "sh", "-c", script, BIN, &PORT.to_string()])
        .arg(dir)
        .stdin(Stdio::null())
        .spawn()
        .expect("unshare (root, util-linux) runs the daemon in its own network namespace");
    let ns = Ns {
        daemon,
        dir: dir.to_path_buf(),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ns.socket().exists() || !ns.dir.join("got").exists() {
        assert!(
            Instant::now() < deadline,
            "daemon or receiver did not start"
        );
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(200));
    ns
}

#[test]
fn phone_ip_follows_an_address_change_at_once() {
    let ns = start(&std::env::temp_dir().join(format!("en-iface-{}", std::process::id())));
    ns.emit("a");
    assert!(
        ns.arrived("a").contains("ip=127.0.0.1"),
        "the interface's first address"
    );
    ns.emit("b");
    assert!(ns.arrived("b").contains("ip=127.0.0.1"));
    // The first address goes: the next message must see the one left, with no wait (a
    // remembered value would still say 127.0.0.1).
    ns.ip(&["addr", "del", "127.0.0.1/8", "dev", "lo"]);
    ns.emit("c");
    let c = ns.arrived("c");
    assert!(c.contains("ip=10.77.0.1"), "after the change: {c}");
    // And back.
    ns.ip(&["addr", "add", "127.0.0.1/8", "dev", "lo"]);
    ns.ip(&["addr", "del", "10.77.0.1/8", "dev", "lo"]);
    ns.ip(&["addr", "add", "10.77.0.1/8", "dev", "lo"]);
    ns.emit("d");
    let d = ns.arrived("d");
    assert!(d.contains("ip=127.0.0.1"), "after the second change: {d}");
}
