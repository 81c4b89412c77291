//! The admin server end to end: the real daemon with `--admin` on loopback, driven by real
//! clients — curl (`--digest`, `--anyauth`, `--basic`) and plain sockets for what curl cannot
//! show (sessions, CSRF, slow clients, lockout).
//!
//! The curl tests run on x86_64 only: curl is a host tool, not in the ARM sysroots the suite
//! runs under qemu-user. The socket tests run everywhere.

use crate::common;

use common::{http_exchange, run_cli, Daemon, Receiver, TempDir, PATIENCE};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const USER: &str = "admin";
const PASSWORD: &str = "correct horse 9";
/// Short delivery timeouts, for the curl tests (x86_64 only: curl is a host program).
#[cfg(target_arch = "x86_64")]
const FAST: &str = r#""delivery": {"connect_timeout_ms": 500, "timeout_ms": 1500, "attempts": 3, "backoff_initial_ms": 50, "backoff_max_ms": 200}"#;

/// Makes a credentials file with the real `passwd` command (password on stdin).
fn passwd(dir: &TempDir, password: &str) -> std::path::PathBuf {
    let path = dir.join("admin.cred");
    let mut child = Command::new(common::bin())
        .args(["passwd", "--file"])
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run passwd");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write password");
    let out = child.wait_with_output().expect("passwd");
    assert!(
        out.status.success(),
        "passwd: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

struct Admin {
    d: Daemon,
    _creds: TempDir,
    addr: SocketAddr,
}

impl Admin {
    fn start(config: &str, extra: &[&str]) -> Admin {
        let creds = TempDir::new("admin-cred");
        let file = passwd(&creds, PASSWORD);
        let mut args = vec![
            "--admin",
            "127.0.0.1:0",
            "--admin-credentials",
            file.to_str().expect("path"),
        ];
        args.extend_from_slice(extra);
        let d = Daemon::start_with(config, &args);
        assert!(d.wait_log("admin: serving http", PATIENCE), "{}", d.log());
        let log = d.log();
        let url = log
            .split("admin: serving ")
            .nth(1)
            .and_then(|r| r.split("://").nth(1))
            .and_then(|r| r.split('/').next())
            .expect("admin address in the log");
        Admin {
            addr: url.parse().expect("address"),
            d,
            _creds: creds,
        }
    }

    /// For curl (the curl tests run natively only).
    #[cfg(target_arch = "x86_64")]
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// One raw request on a fresh connection; (status, head, body).
    fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String, String) {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        split(&http_exchange(self.addr, req.as_bytes()))
    }

    fn basic(&self) -> String {
        use base64_lite as b;
        format!(
            "Basic {}",
            b::encode(format!("{USER}:{PASSWORD}").as_bytes())
        )
    }

    /// Raw request with Basic auth (loopback may use it).
    fn authed(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String, String) {
        let auth = self.basic();
        let mut h = vec![("Authorization", auth.as_str())];
        h.extend_from_slice(headers);
        self.raw(method, path, &h, body)
    }

    fn etag(&self) -> String {
        let (st, head, _) = self.authed("GET", "/api/v1/config", &[], "");
        assert_eq!(st, 200);
        header(&head, "etag").expect("ETag")
    }
}

/// A tiny base64 encoder for the tests (the client side of Basic).
mod base64_lite {
    pub fn encode(b: &[u8]) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::new();
        for c in b.chunks(3) {
            let n = (c[0] as u32) << 16
                | (*c.get(1).unwrap_or(&0) as u32) << 8
                | *c.get(2).unwrap_or(&0) as u32;
            for i in 0..4 {
                if i <= c.len() {
                    s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    s.push('=');
                }
            }
        }
        s
    }
}

/// Splits one response into (status, head, body); the last response when there are several.
fn split(resp: &str) -> (u16, String, String) {
    let start = resp.rfind("HTTP/1.1 ").unwrap_or(0);
    let resp = &resp[start..];
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((resp, ""));
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_string())
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn run_refuses_to_start_without_a_credentials_file_and_says_how_to_make_one() {
    let dir = TempDir::new("admin-nocred");
    let cfg = dir.write("c.json", r#"{"events":{}}"#);
    let missing = dir.join("nope.cred");
    let out = run_cli(&[
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--socket",
        dir.join("s").to_str().unwrap(),
        "--admin",
        "127.0.0.1:0",
        "--admin-credentials",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(out.0, 1, "{out:?}");
    assert!(out.2.contains("event-notify passwd --file"), "{}", out.2);
    // passwd: mode 0600, no password in it, a short one refused.
    let file = passwd(&dir, PASSWORD);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(!std::fs::read_to_string(&file).unwrap().contains(PASSWORD));
    let mut child = Command::new(common::bin())
        .args(["passwd", "--file", dir.join("short").to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"short\n").unwrap();
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(1));
    assert!(!dir.join("short").exists());
    // A file others may read is refused.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run_cli(&[
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--socket",
        dir.join("s").to_str().unwrap(),
        "--admin",
        "127.0.0.1:0",
        "--admin-credentials",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.0, 1, "{out:?}");
    assert!(out.2.contains("chmod 600"), "{}", out.2);
}

#[test]
fn browser_session_needs_csrf_token_and_origin_and_ends_at_logout() {
    let a = Admin::start(r#"{"events":{}}"#, &[]);
    let origin = format!("http://{}", a.addr);
    // No credentials: 401 with Digest challenges.
    let (st, head, _) = a.raw("GET", "/api/v1/config", &[], "");
    assert_eq!(st, 401);
    assert!(
        head.contains("algorithm=SHA-256") && head.contains("algorithm=MD5"),
        "{head}"
    );
    let (st, _, body) = a.raw(
        "POST",
        "/api/v1/login",
        &[("Origin", &origin)],
        r#"{"user":"admin","password":"wrong password"}"#,
    );
    assert_eq!(st, 401, "{body}");
    assert_eq!(json(&body)["code"], "bad_credentials");
    let (st, head, body) = a.raw(
        "POST",
        "/api/v1/login",
        &[("Origin", &origin)],
        &format!(r#"{{"user":"admin","password":"{PASSWORD}"}}"#),
    );
    assert_eq!(st, 200, "{body}");
    let cookie_line = header(&head, "set-cookie").expect("cookie");
    assert!(
        cookie_line.contains("HttpOnly") && cookie_line.contains("SameSite=Strict"),
        "{cookie_line}"
    );
    let cookie = cookie_line.split(';').next().unwrap().to_string();
    let csrf = json(&body)["csrf_token"].as_str().unwrap().to_string();
    let (st, _, body) = a.raw("GET", "/api/v1/session", &[("Cookie", &cookie)], "");
    assert_eq!(
        (st, json(&body)["csrf_token"].as_str()),
        (200, Some(csrf.as_str()))
    );
    let (_, head, _) = a.raw("GET", "/api/v1/config", &[("Cookie", &cookie)], "");
    let etag = header(&head, "etag").unwrap();
    let put = r#"{"url":"127.0.0.1:9/x"}"#;
    // Without the token, with a wrong one, without Origin, from another origin: 403 csrf.
    for h in [
        vec![
            ("Cookie", cookie.as_str()),
            ("If-Match", etag.as_str()),
            ("Origin", origin.as_str()),
        ],
        vec![
            ("Cookie", cookie.as_str()),
            ("If-Match", etag.as_str()),
            ("Origin", origin.as_str()),
            ("X-CSRF-Token", "00"),
        ],
        vec![
            ("Cookie", cookie.as_str()),
            ("If-Match", etag.as_str()),
            ("X-CSRF-Token", csrf.as_str()),
        ],
        vec![
            ("Cookie", cookie.as_str()),
            ("If-Match", etag.as_str()),
            ("X-CSRF-Token", csrf.as_str()),
            ("Origin", "http://evil.example"),
        ],
    ] {
        let (st, _, body) = a.raw("PUT", "/api/v1/events/dnd_on", &h, put);
        assert_eq!(st, 403, "{h:?}: {body}");
        assert_eq!(json(&body)["code"], "csrf");
    }
    assert!(!std::fs::read_to_string(a.d.config_path())
        .unwrap()
        .contains("127.0.0.1:9/x"));
    let (st, _, body) = a.raw(
        "PUT",
        "/api/v1/events/dnd_on",
        &[
            ("Cookie", &cookie),
            ("If-Match", &etag),
            ("X-CSRF-Token", &csrf),
            ("Origin", &origin),
        ],
        put,
    );
    assert_eq!(st, 200, "{body}");
    assert_eq!(json(&body)["in_force"], true);
    let (st, _, _) = a.raw(
        "POST",
        "/api/v1/logout",
        &[
            ("Cookie", &cookie),
            ("X-CSRF-Token", &csrf),
            ("Origin", &origin),
        ],
        "",
    );
    assert_eq!(st, 204);
    // The session is gone; a request with its cookie gets 401 and no challenge (no popup).
    let (st, head, _) = a.raw("GET", "/api/v1/config", &[("Cookie", &cookie)], "");
    assert_eq!(st, 401);
    assert!(header(&head, "www-authenticate").is_none(), "{head}");
}

#[test]
fn three_wrong_passwords_lock_the_address_even_for_the_right_one() {
    let a = Admin::start(r#"{"events":{}}"#, &[]);
    let bad = format!("Basic {}", base64_lite::encode(b"admin:nope-nope"));
    assert_eq!(
        a.raw("GET", "/api/v1/config", &[("Authorization", &bad)], "")
            .0,
        401
    );
    assert_eq!(
        a.raw("GET", "/api/v1/config", &[("Authorization", &bad)], "")
            .0,
        401
    );
    let (st, head, body) = a.raw("GET", "/api/v1/config", &[("Authorization", &bad)], "");
    assert_eq!(st, 429, "{body}");
    assert_eq!(header(&head, "retry-after").as_deref(), Some("60"));
    assert_eq!(json(&body)["code"], "locked");
    let (st, _, _) = a.authed("GET", "/api/v1/config", &[], "");
    assert_eq!(st, 429, "the right password is refused while locked");
    let origin = format!("http://{}", a.addr);
    let (st, _, _) = a.raw(
        "POST",
        "/api/v1/login",
        &[("Origin", &origin)],
        &format!(r#"{{"user":"admin","password":"{PASSWORD}"}}"#),
    );
    assert_eq!(st, 429);
    assert!(a.d.log().contains("locked out for 60 s"), "{}", a.d.log());
    assert!(!a.d.log().contains("nope-nope"));
}

#[test]
fn an_address_outside_the_allow_list_gets_403_before_any_authentication() {
    let a = Admin::start(
        r#"{"events":{}}"#,
        &["--admin-allow", "10.0.0.0/8, 192.168.1.*"],
    );
    let (st, head, body) = a.authed("GET", "/api/v1/config", &[], "");
    assert_eq!(st, 403, "{body}");
    assert_eq!(json(&body)["code"], "forbidden");
    assert!(header(&head, "www-authenticate").is_none());
    let b = Admin::start(r#"{"events":{}}"#, &["--admin-allow", "127.0.0.0/8"]);
    assert_eq!(b.authed("GET", "/api/v1/config", &[], "").0, 200);
}

#[test]
fn slow_and_oversized_clients_are_cut_off_and_the_server_keeps_serving() {
    let a = Admin::start(r#"{"events":{}}"#, &[]);
    // One byte a second: dropped when the head's deadline passes (5 s), not after the 60 bytes.
    let mut s = TcpStream::connect(a.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let t0 = Instant::now();
    let mut answer = Vec::new();
    for b in
        b"GET /api/v1/config HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n"
    {
        if s.write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(700));
        if t0.elapsed() > Duration::from_secs(12) {
            break;
        }
        let _ = s.set_nonblocking(true);
        let mut buf = [0u8; 512];
        if let Ok(n) = s.read(&mut buf) {
            answer.extend_from_slice(&buf[..n]);
            if n == 0 || !answer.is_empty() {
                break;
            }
        }
        let _ = s.set_nonblocking(false);
    }
    let waited = t0.elapsed();
    assert!(
        waited < Duration::from_secs(12),
        "a slow client held the connection for {waited:?}"
    );
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 408") || answer.is_empty(),
        "{answer:?}"
    );
    // Too big a body, too big a head, chunked: refused with a status.
    let big = format!(
        "PUT /api/v1/config HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        10_000_000
    );
    assert!(http_exchange(a.addr, big.as_bytes()).starts_with("HTTP/1.1 413"));
    let head = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(20_000));
    let got = http_exchange(a.addr, head.as_bytes());
    assert!(got.starts_with("HTTP/1.1 431") || got.is_empty(), "{got}");
    assert!(http_exchange(
        a.addr,
        b"POST /dummy.htm HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"
    )
    .starts_with("HTTP/1.1 501"));
    assert_eq!(a.authed("GET", "/api/v1/status", &[], "").0, 200);
}

#[test]
fn the_openapi_document_and_the_server_answer_the_same_routes() {
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../../docs/openapi.json")).unwrap();
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for (m, _) in ops.as_object().expect("operations") {
            if ["get", "put", "post", "delete", "patch"].contains(&m.as_str()) {
                documented.push((m.to_uppercase(), path.clone()));
            }
        }
    }
    documented.sort();
    let mut served: Vec<(String, String)> = event_notify::admin::api::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    served.sort();
    assert_eq!(
        documented, served,
        "docs/openapi.json and admin::api::ROUTES differ"
    );
    // And the server really answers each of them (not 404/405), and nothing else.
    let a = Admin::start(r#"{"events":{"incoming_call":"127.0.0.1:9/x"}}"#, &[]);
    let etag = a.etag();
    for (m, p) in &documented {
        let path = p.replace("{key}", "dnd_on");
        let body = if m == "PUT" && path.ends_with("/config") {
            "{\"events\":{}}"
        } else {
            "{}"
        };
        let (st, _, b) = a.authed(
            m,
            &path,
            &[
                ("If-Match", &a.etag()),
                ("Origin", &format!("http://{}", a.addr)),
            ],
            body,
        );
        assert!(st != 404 && st != 405 && st != 0, "{m} {path}: {st} {b}");
    }
    let _ = etag;
    assert_eq!(a.authed("GET", "/api/v1/nothing", &[], "").0, 404);
    assert_eq!(a.authed("PATCH", "/api/v1/config", &[], "").0, 405);
    let (st, head, body) = a.raw("GET", "/api/v1/openapi.json", &[], "");
    assert_eq!(st, 200);
    assert!(head.contains("application/json"));
    assert_eq!(json(&body), doc);
}

#[test]
fn the_page_goes_out_gzip_compressed_to_a_client_that_accepts_it_and_plain_to_others() {
    let a = Admin::start(r#"{"events":{"incoming_call":"127.0.0.1:9/x"}}"#, &[]);
    let len = |head: &str| -> usize { header(head, "content-length").unwrap().parse().unwrap() };
    for path in ["/", "/app.css", "/app.js", "/api/v1/openapi.json"] {
        let (st, plain_head, plain) = a.raw("GET", path, &[], "");
        assert_eq!(st, 200, "{path}");
        assert_eq!(header(&plain_head, "content-encoding"), None, "{path}");
        assert_eq!(
            header(&plain_head, "vary").as_deref(),
            Some("Accept-Encoding")
        );
        assert_eq!(len(&plain_head), plain.len(), "{path}");
        let (st, gz_head, gz) = a.raw("GET", path, &[("Accept-Encoding", "gzip, deflate, br")], "");
        assert_eq!(st, 200, "{path}");
        assert_eq!(
            header(&gz_head, "content-encoding").as_deref(),
            Some("gzip"),
            "{path}"
        );
        assert_eq!(header(&gz_head, "vary").as_deref(), Some("Accept-Encoding"));
        // A gzip member (its magic bytes are not UTF-8, so the lossy text shows U+FFFD).
        assert!(
            gz.starts_with('\u{1f}') && gz.contains("\u{FFFD}"),
            "{path}: {:?}",
            &gz[..8]
        );
        assert!(len(&gz_head) * 2 < len(&plain_head), "{path}: {gz_head}");
        let (_, head, _) = a.raw(
            "GET",
            path,
            &[("Accept-Encoding", "gzip;q=0, identity")],
            "",
        );
        assert_eq!(header(&head, "content-encoding"), None, "{path}");
        // HEAD: the same head as GET, no body.
        let (st, head, body) = a.raw("HEAD", path, &[("Accept-Encoding", "gzip")], "");
        assert_eq!(
            (st, len(&head), body.as_str()),
            (200, len(&gz_head), ""),
            "{path}"
        );
    }
    let (_, _, html) = a.raw("GET", "/", &[], "");
    assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>\n"));
    let (_, _, doc) = a.raw("GET", "/api/v1/openapi.json", &[], "");
    assert_eq!(doc, include_str!("../../docs/openapi.json"));
}

// ---------------------------------------------------------------------------------------------
// With curl (x86_64 only: a host tool).

/// `curl ARGS URL`; (status of the last response, its head, its body).
#[cfg(target_arch = "x86_64")]
fn curl(args: &[&str], url: &str) -> (u16, String, String) {
    let out = common::output_within(
        Command::new("curl")
            .args(["-s", "-S", "-i", "--max-time", "20"])
            .args(args)
            .arg(url),
        PATIENCE * 3,
    );
    assert!(out.0 == 0, "curl {args:?} {url}: exit {} {}", out.0, out.2);
    split(&out.1)
}

#[cfg(target_arch = "x86_64")]
fn user() -> String {
    format!("{USER}:{PASSWORD}")
}

#[cfg(target_arch = "x86_64")]
#[test]
fn curl_compressed_gets_the_gzip_page_and_inflates_it_to_the_plain_one() {
    let a = Admin::start(r#"{"events":{"incoming_call":"127.0.0.1:9/x"}}"#, &[]);
    for path in ["/", "/app.js", "/api/v1/openapi.json"] {
        let (st, head, inflated) = curl(&["--compressed"], &a.url(path));
        assert_eq!(st, 200, "{path}");
        assert_eq!(
            header(&head, "content-encoding").as_deref(),
            Some("gzip"),
            "{path}"
        );
        let (_, head, plain) = curl(&[], &a.url(path));
        assert_eq!(header(&head, "content-encoding"), None, "{path}");
        assert!(plain.len() > 1000 && inflated == plain, "{path}");
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn curl_digest_anyauth_and_basic_all_get_in_and_a_wrong_password_does_not() {
    let a = Admin::start(
        r#"{"events":{"incoming_call":"127.0.0.1:9/in"}}"#,
        &["--admin-basic", "loopback"],
    );
    let u = user();
    for how in ["--digest", "--anyauth", "--basic"] {
        let (st, head, body) = curl(&[how, "-u", &u], &a.url("/api/v1/config"));
        assert_eq!(st, 200, "{how}: {head}\n{body}");
        assert_eq!(
            json(&body)["events"]["incoming_call"]["url"],
            "127.0.0.1:9/in"
        );
        assert!(header(&head, "etag").is_some());
    }
    let (st, _, _) = curl(
        &["--digest", "-u", "admin:not-the-password"],
        &a.url("/api/v1/config"),
    );
    assert_eq!(st, 401);
    // The events and variables lists.
    let (_, _, body) = curl(&["--digest", "-u", &u], &a.url("/api/v1/events"));
    let ev = json(&body);
    assert_eq!(ev.as_array().unwrap().len(), 20);
    assert_eq!(ev[0]["key"], "incoming_call");
    assert!(ev[0]["aliases"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x == "action_incoming_url"));
    let (_, _, body) = curl(&["--digest", "-u", &u], &a.url("/api/v1/variables"));
    assert!(json(&body)
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["name"] == "remote"));
}

#[cfg(target_arch = "x86_64")]
#[test]
fn tapi_flow_set_at_line_open_deliver_delete_at_line_close() {
    let r = Receiver::start();
    let a = Admin::start(&format!(r#"{{"events":{{}}, {FAST}}}"#), &[]);
    let u = user();
    let enc = |s: &str| {
        s.replace('%', "%25")
            .replace(':', "%3A")
            .replace('/', "%2F")
            .replace('?', "%3F")
            .replace('=', "%3D")
            .replace('&', "%26")
            .replace('$', "%24")
    };
    let open = format!(
        "/dummy.htm?settings=save&action_incoming_url={}&action_connected_url={}&action_disconnected_url={}&store_settings=save",
        enc(&r.url("/in?from=$remote")),
        enc(&r.url("/up?id=$call_id")),
        enc(&r.url("/down?id=$call_id")),
    );
    let (st, _, body) = curl(&["--anyauth", "-u", &u], &a.url(&open));
    assert_eq!((st, body.trim()), (200, "OK"));
    a.d.emit_ok(&["call", "state=incoming", "call_id=c1", "remote=1002"]);
    a.d.emit_ok(&["call", "state=confirmed", "call_id=c1"]);
    a.d.emit_ok(&["call", "state=ended", "call_id=c1"]);
    let got = r.wait_for(3, PATIENCE);
    let targets: Vec<&str> = got.iter().map(|q| q.target.as_str()).collect();
    assert_eq!(targets, ["/in?from=1002", "/up?id=c1", "/down?id=c1"]);
    // lineClose: empty values delete; POST form works too.
    let close = "settings=save&action_incoming_url=&action_connected_url=&action_disconnected_url=&store_settings=save";
    let (st, _, body) = curl(
        &["--digest", "-u", &u, "--data", close],
        &a.url("/dummy.htm"),
    );
    assert_eq!((st, body.trim()), (200, "OK"));
    a.d.emit_ok(&["call", "state=incoming", "call_id=c2", "remote=1003"]);
    a.d.emit_ok(&["call", "state=ended", "call_id=c2"]);
    r.assert_no_more_than(3, Duration::from_millis(800));
    // An unknown setting and an invalid URL: refused, naming the setting; nothing changed.
    let before = std::fs::read_to_string(a.d.config_path()).unwrap();
    let (st, _, body) = curl(
        &["--digest", "-u", &u],
        &a.url("/dummy.htm?settings=save&action_incoming_url=h%2Fok&ringer=3"),
    );
    assert_eq!(st, 400);
    assert!(body.contains("ringer"), "{body}");
    let (st, _, body) = curl(
        &["--digest", "-u", &u],
        &a.url("/dummy.htm?action_incoming_url=h%2Fx%3Fa%3D%24%7Bremote"),
    );
    assert_eq!(st, 400);
    assert!(
        body.contains("action_incoming_url") && body.contains("column"),
        "{body}"
    );
    assert_eq!(std::fs::read_to_string(a.d.config_path()).unwrap(), before);
    // Without credentials: 401. A browser replaying cached credentials for another site: 403.
    assert_eq!(
        curl(&[], &a.url("/dummy.htm?action_incoming_url=h%2Fx")).0,
        401
    );
    let (st, _, _) = curl(
        &[
            "--digest",
            "-u",
            &u,
            "-H",
            "Referer: http://evil.example/page",
        ],
        &a.url("/dummy.htm?action_incoming_url=h%2Fx"),
    );
    assert_eq!(st, 403);
    let (st, _, _) = curl(
        &[
            "--basic",
            "-u",
            &u,
            "-H",
            "Origin: http://evil.example",
            "--data",
            "{}",
        ],
        &a.url("/api/v1/events/dnd_on/test"),
    );
    assert_eq!(st, 403);
    assert_eq!(std::fs::read_to_string(a.d.config_path()).unwrap(), before);
}

#[cfg(target_arch = "x86_64")]
#[test]
fn a_stale_if_match_is_refused_and_a_missing_one_is_required() {
    let a = Admin::start(r#"{"events":{"incoming_call":"127.0.0.1:9/a"}}"#, &[]);
    let u = user();
    let (_, head, _) = curl(&["--digest", "-u", &u], &a.url("/api/v1/config"));
    let first = header(&head, "etag").unwrap();
    let body = r#"{"url":"127.0.0.1:9/b"}"#;
    let (st, _, b) = curl(
        &[
            "--digest",
            "-u",
            &u,
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/json",
            "--data",
            body,
        ],
        &a.url("/api/v1/events/incoming_call"),
    );
    assert_eq!(st, 428, "{b}");
    let m = format!("If-Match: {first}");
    let (st, _, b) = curl(
        &["--digest", "-u", &u, "-X", "PUT", "-H", &m, "--data", body],
        &a.url("/api/v1/events/Incoming%20Call"),
    );
    assert_eq!(st, 200, "{b}");
    let second = json(&b)["etag"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    // The other admin, still holding the first ETag.
    let (st, _, b) = curl(
        &[
            "--digest",
            "-u",
            &u,
            "-X",
            "PUT",
            "-H",
            &m,
            "--data",
            r#"{"url":"127.0.0.1:9/c"}"#,
        ],
        &a.url("/api/v1/events/incoming_call"),
    );
    assert_eq!(st, 412, "{b}");
    assert_eq!(json(&b)["code"], "stale");
    assert!(std::fs::read_to_string(a.d.config_path())
        .unwrap()
        .contains("127.0.0.1:9/b"));
}

#[cfg(target_arch = "x86_64")]
#[test]
fn an_invalid_template_gets_422_with_its_column_and_the_old_config_keeps_delivering() {
    let r = Receiver::start();
    let a = Admin::start(
        &format!(
            r#"{{"events":{{"dnd_on":"{}"}}, {FAST}}}"#,
            r.bare_url("/dnd")
        ),
        &[],
    );
    let u = user();
    let etag = a.etag();
    let m = format!("If-Match: {etag}");
    let bad = r#"{"url":"192.168.5.10:8080/in?from=${remote"}"#;
    let (st, _, b) = curl(
        &["--digest", "-u", &u, "-X", "PUT", "-H", &m, "--data", bad],
        &a.url("/api/v1/events/dnd_on"),
    );
    assert_eq!(st, 422, "{b}");
    let v = json(&b);
    assert_eq!(v["code"], "invalid");
    let p = &v["problems"][0];
    assert_eq!(p["field"], "events.dnd_on.url");
    assert_eq!(p["column"], 27, "{p}");
    // The text is the line `check` prints for the same file.
    let dir = TempDir::new("admin-check");
    let f = dir.write(
        "c.json",
        r#"{"events":{"dnd_on":"192.168.5.10:8080/in?from=${remote"}}"#,
    );
    let out = run_cli(&["check", "--config", f.to_str().unwrap()]);
    let check_line = out.1.lines().next().unwrap().to_string();
    let api_text = p["text"].as_str().unwrap();
    assert_eq!(
        api_text.split_once(": ").unwrap().1,
        check_line.split_once(": ").unwrap().1,
        "api {api_text:?} vs check {check_line:?}"
    );
    assert_eq!(a.etag(), etag, "nothing changed");
    a.d.emit_ok(&["dnd", "state=on"]);
    let got = r.wait_for(1, PATIENCE);
    assert_eq!(got[0].target, "/dnd");
    // A whole-config PUT with an error also changes nothing.
    let (st, _, b) = curl(
        &[
            "--digest",
            "-u",
            &u,
            "-X",
            "PUT",
            "-H",
            &m,
            "--data",
            r#"{"events":{"dnd_on":"h/x"},"delivery":{"attempts":-1}}"#,
        ],
        &a.url("/api/v1/config"),
    );
    assert_eq!(st, 422, "{b}");
    assert!(json(&b)["problems"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["field"] == "delivery.attempts"));
    assert_eq!(a.etag(), etag);
}

/// A whole-config PUT that leaves `events` out (an admin or CTI driver sending only delivery
/// settings) is refused: it used to turn every event off. `"events": {}` still turns them off.
#[cfg(target_arch = "x86_64")]
#[test]
fn a_whole_config_put_without_events_is_refused_and_every_event_stays() {
    let r = Receiver::start();
    let a = Admin::start(
        &format!(
            r#"{{"events":{{"dnd_on":"{}","dnd_off":"{}"}}, {FAST}}}"#,
            r.bare_url("/on"),
            r.bare_url("/off")
        ),
        &[],
    );
    let u = user();
    let etag = a.etag();
    let before = std::fs::read_to_string(a.d.config_path()).unwrap();
    let m = format!("If-Match: {etag}");
    let put = |body: &str| {
        curl(
            &["--digest", "-u", &u, "-X", "PUT", "-H", &m, "--data", body],
            &a.url("/api/v1/config"),
        )
    };
    for body in [
        r#"{"delivery":{"attempts":5}}"#,
        r#"{"device":{"language":"de"}}"#,
        "{}",
        "",
    ] {
        let (st, _, b) = put(body);
        assert_eq!(st, 422, "{body:?}: {b}");
        let v = json(&b);
        assert_eq!(v["code"], "invalid", "{b}");
        let p = &v["problems"][0];
        assert_eq!(p["field"], "events", "{b}");
        let msg = p["message"].as_str().unwrap();
        for part in [
            "a whole config must have `events`",
            "/api/v1/events/KEY",
            r#""events": {}"#,
        ] {
            assert!(msg.contains(part), "{part:?} not in {msg:?}");
            assert!(v["error"].as_str().unwrap().contains(part), "{b}");
        }
        assert_eq!(a.etag(), etag, "{body:?} changed the config");
    }
    assert_eq!(std::fs::read_to_string(a.d.config_path()).unwrap(), before);
    // The events in force still deliver.
    a.d.emit_ok(&["dnd", "state=on"]);
    a.d.emit_ok(&["dnd", "state=off"]);
    let got = r.wait_for(2, PATIENCE);
    assert_eq!(got[0].target, "/on");
    assert_eq!(got[1].target, "/off");
    // Every event off, said so: taken.
    let (st, _, b) = put(r#"{"events":{}}"#);
    assert_eq!(st, 200, "{b}");
    let (_, _, cfg) = curl(&["--digest", "-u", &u], &a.url("/api/v1/config"));
    let v = json(&cfg);
    let on = v["events"]
        .as_object()
        .unwrap()
        .values()
        .filter(|e| e["url"].as_str().is_some_and(|u| !u.is_empty()))
        .count();
    assert_eq!(on, 0, "{cfg}");
    assert_eq!(v["delivery"]["attempts"], 3, "delivery kept: {cfg}");
}

/// An interface name Linux would refuse: `check` reports it with its place, in the config and in
/// the board file; `run` refuses such a board; the admin API refuses it like `check`.
#[test]
fn a_bad_interface_name_is_refused_by_check_run_and_the_api() {
    let dir = TempDir::new("iface");
    let good = dir.write("c.json", r#"{"events":{"dnd_on":"127.0.0.1:9/x"}}"#);
    let good = good.to_str().unwrap();
    for bad in [
        "eth0/x",
        "eth 0",
        "eth0:1",
        "..",
        "",
        "0123456789abcdef",
        "eth0\nrefused 9",
    ] {
        let j = serde_json::to_string(bad).unwrap();
        let cfg = dir.write(
            "bad.json",
            format!(r#"{{"events":{{}},"device":{{"interface":{j}}}}}"#),
        );
        let (code, out, _) = run_cli(&["check", "--config", cfg.to_str().unwrap()]);
        assert_eq!(code, 1, "{bad:?}: {out}");
        assert!(
            out.contains("error: device.interface: must be an interface name"),
            "{bad:?}: {out}"
        );
        let board = dir.write("board.json", format!(r#"{{"interface":{j}}}"#));
        let board = board.to_str().unwrap();
        let (code, out, _) = run_cli(&["check", "--config", good, "--board", board]);
        assert_eq!(code, 1, "{bad:?}: {out}");
        assert!(
            out.contains(&format!(
                "{board}: error: interface: must be an interface name"
            )),
            "{bad:?}: {out}"
        );
    }
    let board = dir.write("board.json", r#"{"interface":"lo","product":"P1"}"#);
    let (code, out, _) = run_cli(&[
        "check",
        "--config",
        good,
        "--board",
        board.to_str().unwrap(),
    ]);
    assert_eq!((code, out.contains("ok: 1 of 20")), (0, true), "{out}");
    // `run` with such a board does not start.
    let board = dir.write("board.json", r#"{"interface":"eth0/x"}"#);
    let sock = dir.join("s.sock");
    let (code, _, err) = run_cli(&[
        "run",
        "--config",
        good,
        "--board",
        board.to_str().unwrap(),
        "--socket",
        sock.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("interface: must be an interface name"),
        "{err}"
    );
    // The API: the same rule, the same place; nothing changes.
    let a = Admin::start(r#"{"events":{"dnd_on":"127.0.0.1:9/x"}}"#, &[]);
    let etag = a.etag();
    let body = r#"{"events":{"dnd_on":"127.0.0.1:9/x"},"device":{"interface":"eth0/x"}}"#;
    let (st, _, b) = a.authed("PUT", "/api/v1/config", &[("If-Match", &etag)], body);
    assert_eq!(st, 422, "{b}");
    assert!(
        json(&b)["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["field"] == "device.interface"),
        "{b}"
    );
    assert_eq!(a.etag(), etag);
    let body = r#"{"events":{"dnd_on":"127.0.0.1:9/x"},"device":{"interface":"lo"}}"#;
    let (st, _, b) = a.authed("PUT", "/api/v1/config", &[("If-Match", &etag)], body);
    assert_eq!(st, 200, "a good name is taken: {b}");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn a_password_set_through_the_api_never_comes_back_anywhere() {
    const SECRET: &str = "Zq8-very-secret-pw";
    let r = Receiver::start();
    let a = Admin::start(&format!(r#"{{"events":{{}}, {FAST}}}"#), &[]);
    let u = user();
    let m = format!("If-Match: {}", a.etag());
    let ev = format!(
        r#"{{"url":"{}","method":"POST","body":"id=$call_id","username":"phone","password":"{SECRET}"}}"#,
        r.url("/end")
    );
    let (st, _, b) = curl(
        &["--digest", "-u", &u, "-X", "PUT", "-H", &m, "--data", &ev],
        &a.url("/api/v1/events/terminate_call"),
    );
    assert_eq!(st, 200, "{b}");
    assert_eq!(json(&b)["event"]["password_set"], true);
    // A URL password too.
    let m = format!("If-Match: {}", a.etag());
    let url_ev = format!(r#"{{"url":"http://cti:{SECRET}@{}/in"}}"#, r.host_port());
    let (st, _, b) = curl(
        &[
            "--digest", "-u", &u, "-X", "PUT", "-H", &m, "--data", &url_ev,
        ],
        &a.url("/api/v1/events/incoming_call"),
    );
    assert_eq!(st, 200, "{b}");
    a.d.emit_ok(&["call", "state=incoming", "call_id=p1", "remote=1"]);
    a.d.emit_ok(&["call", "state=ended", "call_id=p1"]);
    let got = r.wait_for(2, PATIENCE);
    assert!(
        got.iter()
            .any(|q| q.basic_auth() == Some(("phone".into(), SECRET.into()))),
        "the receiver gets it"
    );
    let mut seen = String::new();
    for path in [
        "/api/v1/config",
        "/api/v1/events/terminate_call",
        "/api/v1/events/incoming_call",
        "/api/v1/status",
    ] {
        let (st, head, body) = curl(&["--digest", "-u", &u], &a.url(path));
        assert_eq!(st, 200, "{path}");
        seen += &head;
        seen += &body;
    }
    let (_, _, body) = curl(
        &["--digest", "-u", &u, "--data", "{}"],
        &a.url("/api/v1/events/terminate_call/preview"),
    );
    assert!(body.contains("Basic ****"), "{body}");
    seen += &body;
    let (_, _, body) = curl(
        &["--digest", "-u", &u, "--data", "{}"],
        &a.url("/api/v1/events/terminate_call/test"),
    );
    assert_eq!(json(&body)["ok"], true, "{body}");
    seen += &body;
    seen += &a.d.status();
    seen += &a.d.log();
    assert!(!seen.contains(SECRET), "the password came back:\n{seen}");
    // Keeping it: a whole-config PUT of what GET returned keeps both passwords.
    let (_, head, cfg) = curl(&["--digest", "-u", &u], &a.url("/api/v1/config"));
    let m = format!("If-Match: {}", header(&head, "etag").unwrap());
    let (st, _, b) = curl(
        &["--digest", "-u", &u, "-X", "PUT", "-H", &m, "--data", &cfg],
        &a.url("/api/v1/config"),
    );
    assert_eq!(st, 200, "{b}");
    let file = std::fs::read_to_string(a.d.config_path()).unwrap();
    assert_eq!(file.matches(SECRET).count(), 2, "{file}");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn test_send_reports_the_receivers_status_or_the_error() {
    let r = Receiver::with_statuses([200, 500]);
    let a = Admin::start(
        &format!(
            r#"{{"events":{{"dnd_on":"{}"}}, {FAST}}}"#,
            r.bare_url("/t?who=$remote&ev=$event")
        ),
        &[],
    );
    let u = user();
    let (st, _, b) = curl(
        &[
            "--digest",
            "-u",
            &u,
            "--data",
            r#"{"vars":{"remote":"1002"}}"#,
        ],
        &a.url("/api/v1/events/dnd_on/test"),
    );
    assert_eq!(st, 200, "{b}");
    let v = json(&b);
    assert_eq!(
        (v["ok"].as_bool(), v["status"].as_u64()),
        (Some(true), Some(200)),
        "{v}"
    );
    assert!(
        v["request_line"]
            .as_str()
            .unwrap()
            .ends_with("/t?who=1002&ev=dnd_on"),
        "{v}"
    );
    let (_, _, b) = curl(
        &["--digest", "-u", &u, "--data", "{}"],
        &a.url("/api/v1/events/dnd_on/test"),
    );
    let v = json(&b);
    assert_eq!(
        (v["ok"].as_bool(), v["status"].as_u64()),
        (Some(false), Some(500)),
        "{v}"
    );
    let got = r.wait_for(2, PATIENCE);
    assert_eq!(got[0].target, "/t?who=1002&ev=dnd_on");
    // Nothing listening: an error, quickly.
    let down = Receiver::down();
    let ev = format!(r#"{{"event":{{"url":"{}"}}}}"#, down.url("/x"));
    let (_, _, b) = curl(
        &["--digest", "-u", &u, "--data", &ev],
        &a.url("/api/v1/events/dnd_on/test"),
    );
    let v = json(&b);
    assert_eq!(v["ok"], false, "{v}");
    assert!(v["error"].is_string(), "{v}");
    // An event with no URL: 422.
    assert_eq!(
        curl(
            &["--digest", "-u", &u, "--data", "{}"],
            &a.url("/api/v1/events/dnd_off/test")
        )
        .0,
        422
    );
    // Status shows the test sends? No: they bypass the outbox; status counts the daemon's own.
    let (_, _, b) = curl(&["--digest", "-u", &u], &a.url("/api/v1/status"));
    let s = json(&b);
    assert_eq!(s["events"].as_array().unwrap().len(), 20);
    assert_eq!(s["events"][7]["key"], "dnd_on");
    assert_eq!(s["events"][7]["state"], "on");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn kill_9_during_a_burst_of_writes_leaves_a_valid_config() {
    let mut a = Admin::start(r#"{"events":{}}"#, &[]);
    let auth = a.basic();
    let addr = a.addr;
    let writer = std::thread::spawn(move || {
        let mut n = 0u32;
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(20) {
            let mut s = match TcpStream::connect(addr) {
                Ok(s) => s,
                Err(_) => break,
            };
            let body = format!(
                r#"{{"events":{{"incoming_call":"127.0.0.1:9/n{n}?pad={}"}}}}"#,
                "x".repeat((n as usize * 37) % 300)
            );
            let req = format!("PUT /api/v1/config HTTP/1.1\r\nHost: h\r\nAuthorization: {auth}\r\nIf-Match: *\r\nContent-Length: {}\r\n\r\n{body}", body.len());
            if s.write_all(req.as_bytes()).is_err() {
                break;
            }
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.is_empty() {
                break;
            }
            n += 1;
        }
        n
    });
    // If-Match "*" is not a wildcard here (a stale write must be refused): the burst above gets
    // 412, so write with the real ETag from another thread.
    let a_addr = a.addr;
    let auth2 = a.basic();
    let writer2 = std::thread::spawn(move || {
        let mut n = 0u32;
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(20) {
            let get =
                format!("GET /api/v1/config HTTP/1.1\r\nHost: h\r\nAuthorization: {auth2}\r\n\r\n");
            let Ok(mut s) = TcpStream::connect(a_addr) else {
                break;
            };
            let _ = s.write_all(get.as_bytes());
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            let Some(tag) = header(&out, "etag") else {
                break;
            };
            let body = format!(
                r#"{{"events":{{"dnd_on":"127.0.0.1:9/m{n}?pad={}"}}}}"#,
                "y".repeat((n as usize * 53) % 400)
            );
            let req = format!("PUT /api/v1/config HTTP/1.1\r\nHost: h\r\nAuthorization: {auth2}\r\nIf-Match: {tag}\r\nContent-Length: {}\r\n\r\n{body}", body.len());
            let Ok(mut s) = TcpStream::connect(a_addr) else {
                break;
            };
            if s.write_all(req.as_bytes()).is_err() {
                break;
            }
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if !out.starts_with("HTTP/1.1 200") {
                break;
            }
            n += 1;
        }
        n
    });
    // Let some writes land, then kill -9 in the middle of the burst.
    let deadline = Instant::now() + PATIENCE;
    while !std::fs::read_to_string(a.d.config_path())
        .unwrap_or_default()
        .contains("/m3?")
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    a.d.signal(nix::sys::signal::Signal::SIGKILL);
    assert!(a.d.wait_exit(PATIENCE).is_some());
    let _ = writer.join();
    let done = writer2.join().unwrap();
    assert!(done >= 3, "only {done} writes before the kill");
    let text = std::fs::read_to_string(a.d.config_path()).unwrap();
    let out = run_cli(&["check", "--config", a.d.config_path().to_str().unwrap()]);
    assert_eq!(
        out.0, 0,
        "config after kill -9 is not valid:\n{text}\n{out:?}"
    );
    assert!(text.contains("/m"), "{text}");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn https_with_a_certificate_gives_secure_cookies_and_takes_basic() {
    let dir = TempDir::new("admin-tls");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
    let cert_file = dir.write("cert.pem", cert.pem());
    let key_file = dir.write("key.pem", key.serialize_pem());
    let a = Admin::start(
        r#"{"events":{}}"#,
        &[
            "--admin-cert",
            cert_file.to_str().unwrap(),
            "--admin-key",
            key_file.to_str().unwrap(),
        ],
    );
    assert!(a.d.log().contains("serving https://"), "{}", a.d.log());
    let base = format!("https://{}", a.addr);
    let ca = cert_file.to_str().unwrap();
    let (st, head, _) = curl(
        &["--cacert", ca, "--basic", "-u", &user()],
        &format!("{base}/api/v1/status"),
    );
    assert_eq!(st, 200);
    assert!(header(&head, "strict-transport-security").is_some());
    let (st, head, _) = curl(
        &[
            "--cacert",
            ca,
            "-H",
            &format!("Origin: {base}"),
            "--data",
            &format!(r#"{{"user":"admin","password":"{PASSWORD}"}}"#),
        ],
        &format!("{base}/api/v1/login"),
    );
    assert_eq!(st, 200);
    assert!(
        header(&head, "set-cookie").unwrap().contains("; Secure"),
        "{head}"
    );
    // Plain HTTP to the HTTPS port gets nothing useful.
    let got = http_exchange(a.addr, b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(!got.contains("\"counters\""), "{got}");
}

/// The client side of RFC 7616 for one request: (Authorization header) for `alg` ("SHA-256" or "MD5").
fn digest_header(alg: &str, nonce: &str, method: &str, uri: &str, nc: u32) -> String {
    use sha2::Digest as _;
    let h = |s: String| -> String {
        let bytes: Vec<u8> = if alg == "MD5" {
            md5::Md5::digest(s.as_bytes()).to_vec()
        } else {
            sha2::Sha256::digest(s.as_bytes()).to_vec()
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    };
    let ha1 = h(format!("{USER}:event-notify:{PASSWORD}"));
    let ha2 = h(format!("{method}:{uri}"));
    let resp = h(format!("{ha1}:{nonce}:{nc:08x}:c0ffee:auth:{ha2}"));
    format!("Digest username=\"{USER}\", realm=\"event-notify\", nonce=\"{nonce}\", uri=\"{uri}\", algorithm={alg}, qop=auth, nc={nc:08x}, cnonce=\"c0ffee\", response=\"{resp}\"")
}

#[test]
fn digest_sha256_and_md5_work_and_a_replayed_request_is_refused() {
    let a = Admin::start(r#"{"events":{}}"#, &[]);
    let (st, head, _) = a.raw("GET", "/api/v1/status", &[], "");
    assert_eq!(st, 401);
    let nonce = head
        .split("nonce=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("nonce")
        .to_string();
    for (i, alg) in ["SHA-256", "MD5"].iter().enumerate() {
        let h = digest_header(alg, &nonce, "GET", "/api/v1/status", i as u32 + 1);
        let (st, _, body) = a.raw("GET", "/api/v1/status", &[("Authorization", &h)], "");
        assert_eq!(st, 200, "{alg}: {body}");
        // The same request again (a capture replayed): refused, with a fresh challenge.
        let (st, head, _) = a.raw("GET", "/api/v1/status", &[("Authorization", &h)], "");
        assert_eq!(st, 401, "{alg} replay");
        assert!(head.contains("stale=true"), "{head}");
    }
    // Signed for another target: not accepted here.
    let h = digest_header("SHA-256", &nonce, "GET", "/api/v1/config", 9);
    assert_eq!(
        a.raw("GET", "/api/v1/status", &[("Authorization", &h)], "")
            .0,
        401
    );
    // A wrong password counts towards the lockout like any other.
    assert!(!a.d.log().contains(PASSWORD));
}

/// A provisioning server pushes a Yealink file as it is: the imported event replaces its entry,
/// the rest of the config (delivery, other events, their passwords) stays, and the next call
/// goes where the file says. A file with nothing to import changes nothing.
#[cfg(target_arch = "x86_64")]
#[test]
fn a_vendor_file_pushed_to_the_import_route_is_in_force_and_keeps_the_rest() {
    let r = Receiver::start();
    let a = Admin::start(
        &format!(
            r#"{{"events":{{"incoming_call":"127.0.0.1:9/old","dnd_on":{{"url":"127.0.0.1:9/dnd","password":"keep-me"}}}}, {FAST}}}"#
        ),
        &[],
    );
    let u = user();
    let dir = TempDir::new("admin-import");
    let file = dir.path().join("y.cfg");
    std::fs::write(
        &file,
        format!(
            "#!version:1.0.0.1\n## pushed as is\naction_url.incoming_call = \"{}\"\naction_url.ring_tone = 3\n",
            r.url("/yl?from=$callerID")
        ),
    )
    .unwrap();
    let etag = a.etag();
    let (st, _, body) = curl(
        &[
            "--digest",
            "-u",
            &u,
            "-H",
            &format!("If-Match: {etag}"),
            "-H",
            "Content-Type: text/plain",
            "--data-binary",
            &format!("@{}", file.display()),
        ],
        &a.url("/api/v1/import?from=yealink"),
    );
    assert_eq!(st, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["in_force"], true, "{body}");
    assert_eq!(v["vendor"], "yealink", "{body}");
    assert!(!body.contains("keep-me"), "{body}");
    a.d.emit_ok(&["call", "state=incoming", "call_id=i1", "remote=1002"]);
    let got = r.wait_for(1, PATIENCE);
    assert_eq!(got[0].target, "/yl?from=1002");
    let stored = std::fs::read_to_string(a.d.config_path()).unwrap();
    assert!(
        stored.contains("keep-me") && stored.contains("/dnd"),
        "{stored}"
    );
    // Nothing to import: 422, the file unchanged; a stale ETag: 412.
    let (st, _, body) = curl(
        &[
            "--digest",
            "-u",
            &u,
            "-H",
            &format!("If-Match: {}", a.etag()),
            "--data-binary",
            "account.1.label = x",
        ],
        &a.url("/api/v1/import?from=yealink"),
    );
    assert_eq!(st, 422, "{body}");
    let (st, _, _) = curl(
        &[
            "--digest",
            "-u",
            &u,
            "-H",
            &format!("If-Match: {etag}"),
            "--data-binary",
            &format!("@{}", file.display()),
        ],
        &a.url("/api/v1/import"),
    );
    assert_eq!(st, 412);
    assert_eq!(std::fs::read_to_string(a.d.config_path()).unwrap(), stored);
}

/// Headers, signing secrets, `max_age_s` and the spool were added to the config after the API:
/// every way the API writes (PUT of one event, the CTI request, a whole-config PUT of what GET
/// showed) keeps them, and no response, log line or status shows a secret.
#[test]
fn every_write_keeps_headers_signing_secrets_max_age_and_spool_and_never_shows_a_secret() {
    const EV_SECRET: &str = "Ev-sign-7Qx1";
    const DEL_SECRET: &str = "Del-sign-9Kp2";
    const KEY: &str = "Hdr-key-4Tz8";
    let r = Receiver::start();
    let spool = TempDir::new("admin-spool");
    let spool_path = spool.path().join("en.spool");
    let cfg = format!(
        r#"{{"events":{{"incoming_call":{{"url":"{}","signing_secret":"{EV_SECRET}",
              "headers":{{"X-Api-Key":"{KEY}","X-Site":"lab-$remote"}}}}}},
            "delivery":{{"connect_timeout_ms":500,"timeout_ms":1500,"max_age_s":900,
              "spool":{{"path":"{}","max_bytes":65536}},"signing_secret":"{DEL_SECRET}"}}}}"#,
        r.url("/in"),
        spool_path.display()
    );
    let a = Admin::start(&cfg, &[]);
    let mut seen = String::new();
    let file_keeps_all = |why: &str| {
        let f = std::fs::read_to_string(a.d.config_path()).unwrap();
        for want in [
            EV_SECRET,
            DEL_SECRET,
            KEY,
            "lab-$remote",
            "\"max_age_s\": 900",
            "65536",
        ] {
            assert!(f.contains(want), "{why}: {want} lost from the file:\n{f}");
        }
    };
    // GET shows the new fields, the secrets only as "set" and the key header masked.
    let (st, head, body) = a.authed("GET", "/api/v1/config", &[], "");
    assert_eq!(st, 200, "{body}");
    let v = json(&body);
    let ev = &v["events"]["incoming_call"];
    assert_eq!(ev["signing_secret_set"], true, "{body}");
    assert_eq!(ev["headers"]["X-Api-Key"], "****", "{body}");
    assert_eq!(ev["headers"]["X-Site"], "lab-$remote", "{body}");
    assert_eq!(v["delivery"]["max_age_s"], 900, "{body}");
    assert_eq!(v["delivery"]["spool"]["max_bytes"], 65536, "{body}");
    assert_eq!(v["delivery"]["signing_secret_set"], true, "{body}");
    assert!(
        v["delivery_defaults"]["max_age_s"].as_u64().is_some(),
        "{body}"
    );
    seen += &head;
    seen += &body;
    // 1. PUT of one event (a URL change only).
    let m = format!("If-Match: {}", header(&head, "etag").unwrap());
    let put = format!(r#"{{"url":"{}"}}"#, r.url("/in2?from=$remote"));
    let (st, _, body) = a.authed(
        "PUT",
        "/api/v1/events/incoming_call",
        &[("If-Match", &m[10..])],
        &put,
    );
    assert_eq!(st, 200, "{body}");
    seen += &body;
    file_keeps_all("PUT of one event");
    // 2. The CTI request.
    let cti = format!(
        "/dummy.htm?settings=save&action_incoming_url={}",
        r.url("/in3?from=$remote")
            .replace(':', "%3A")
            .replace('/', "%2F")
            .replace('?', "%3F")
            .replace('=', "%3D")
            .replace('$', "%24")
    );
    let (st, _, body) = a.authed("GET", &cti, &[], "");
    assert_eq!((st, body.trim()), (200, "OK"));
    file_keeps_all("the CTI request");
    // 3. A whole-config PUT of what GET showed, as a page save does.
    let (_, head, body) = a.authed("GET", "/api/v1/config", &[], "");
    seen += &body;
    let tag = header(&head, "etag").unwrap();
    let (st, _, b) = a.authed("PUT", "/api/v1/config", &[("If-Match", &tag)], &body);
    assert_eq!(st, 200, "{b}");
    file_keeps_all("a whole-config PUT");
    // The event still goes out with its headers (the stored key, not ****) and a signature.
    a.d.emit_ok(&["call", "state=incoming", "call_id=h1", "remote=1002"]);
    let got = r.wait_for(1, PATIENCE);
    assert_eq!(got[0].target, "/in3?from=1002");
    assert_eq!(got[0].header("x-api-key"), Some(KEY));
    assert_eq!(got[0].header("x-site"), Some("lab-1002"));
    assert!(got[0].header("x-event-notify-signature").is_some());
    // Preview shows the headers, the key masked, and that the request is signed.
    let (st, _, body) = a.authed("POST", "/api/v1/events/incoming_call/preview", &[], "{}");
    assert_eq!(st, 200, "{body}");
    assert!(
        body.contains("X-Site")
            && body.contains("lab-1002")
            && body.contains("X-Event-Notify-Signature"),
        "{body}"
    );
    seen += &body;
    // Clearing: "" removes the event's secret; a header left out of the list is removed;
    // a delivery secret left out is kept.
    let m = a.etag();
    let (st, _, body) = a.authed(
        "PUT",
        "/api/v1/events/incoming_call",
        &[("If-Match", &m)],
        r#"{"signing_secret":"","headers":{"X-Api-Key":"****"}}"#,
    );
    assert_eq!(st, 200, "{body}");
    assert_eq!(json(&body)["event"]["signing_secret_set"], false, "{body}");
    seen += &body;
    let f = std::fs::read_to_string(a.d.config_path()).unwrap();
    assert!(!f.contains(EV_SECRET) && !f.contains("X-Site"), "{f}");
    assert!(f.contains(KEY) && f.contains(DEL_SECRET), "{f}");
    for path in [
        "/api/v1/config",
        "/api/v1/events/incoming_call",
        "/api/v1/status",
    ] {
        let (st, head, body) = a.authed("GET", path, &[], "");
        assert_eq!(st, 200, "{path}");
        seen += &head;
        seen += &body;
    }
    seen += &a.d.status();
    seen += &a.d.log();
    for s in [EV_SECRET, DEL_SECRET, KEY] {
        assert!(!seen.contains(s), "{s} came back:\n{seen}");
    }
}

/// `admin.refused_writes` in the API's status and `admin_refused_writes` in the daemon's.
#[cfg(target_arch = "x86_64")]
fn refused_writes(a: &Admin, u: &str) -> (u64, u64) {
    let (st, _, body) = curl(&["--digest", "-u", u], &a.url("/api/v1/status"));
    assert_eq!(st, 200, "{body}");
    let api = json(&body)["admin"]["refused_writes"]
        .as_u64()
        .unwrap_or_else(|| panic!("no admin.refused_writes: {body}"));
    (api, common::stat(&a.d.status(), "admin_refused_writes"))
}

#[cfg(target_arch = "x86_64")]
#[test]
fn refused_writes_are_counted_in_both_statuses_and_nothing_else_is() {
    let a = Admin::start(r#"{"events":{"incoming_call":"127.0.0.1:9/a"}}"#, &[]);
    let u = user();
    assert_eq!(refused_writes(&a, &u), (0, 0));
    let m = format!("If-Match: {}", a.etag());
    let before = std::fs::read_to_string(a.d.config_path()).unwrap();
    let put = |path: &str, body: &str| {
        curl(
            &["--digest", "-u", &u, "-X", "PUT", "-H", &m, "--data", body],
            &a.url(path),
        )
        .0
    };
    // Refused: an invalid template (422), a body that is not JSON (400), a whole config
    // without events (422), the CTI request with a setting that is not ours and with an
    // invalid URL (400 each, GET and POST).
    assert_eq!(
        put(
            "/api/v1/events/incoming_call",
            r#"{"url":"h/x?a=${remote"}"#
        ),
        422
    );
    assert_eq!(put("/api/v1/events/incoming_call", "{not json"), 400);
    assert_eq!(put("/api/v1/config", r#"{"delivery":{}}"#), 422);
    let cti = |q: &str, data: Option<&str>| {
        let mut args = vec!["--digest", "-u", &u];
        if let Some(d) = data {
            args.extend(["--data", d]);
        }
        curl(&args, &a.url(&format!("/dummy.htm{q}"))).0
    };
    assert_eq!(cti("?settings=save&ringer=3", None), 400);
    assert_eq!(
        cti(
            "",
            Some("settings=save&action_incoming_url=h%2Fx%3Fa%3D%24%7Bremote")
        ),
        400
    );
    assert_eq!(refused_writes(&a, &u), (5, 5));
    assert_eq!(std::fs::read_to_string(a.d.config_path()).unwrap(), before);
    // Not refused writes: a preview of an invalid template (nothing is written), a write with
    // a stale or missing If-Match, one without credentials, an unknown event, a write that
    // succeeds, a CTI request that succeeds.
    let (st, _, _) = curl(
        &[
            "--digest",
            "-u",
            &u,
            "--data",
            r#"{"url":"h/x?a=${remote"}"#,
        ],
        &a.url("/api/v1/events/incoming_call/preview"),
    );
    assert_eq!(st, 200);
    let stale = r#"If-Match: "0-stale""#;
    let (st, _, _) = curl(
        &[
            "--digest",
            "-u",
            &u,
            "-X",
            "PUT",
            "-H",
            stale,
            "--data",
            "{not json",
        ],
        &a.url("/api/v1/events/incoming_call"),
    );
    assert_eq!(st, 412);
    let (st, _, _) = curl(
        &["--digest", "-u", &u, "-X", "PUT", "--data", "{not json"],
        &a.url("/api/v1/events/incoming_call"),
    );
    assert_eq!(st, 428);
    let (st, _, _) = curl(
        &["-X", "PUT", "-H", &m, "--data", "{not json"],
        &a.url("/api/v1/events/incoming_call"),
    );
    assert_eq!(st, 401);
    assert_eq!(put("/api/v1/events/no_such_event", "{}"), 404);
    assert_eq!(
        put("/api/v1/events/incoming_call", r#"{"url":"127.0.0.1:9/b"}"#),
        200
    );
    assert_eq!(
        cti("?settings=save&action_dnd_on_url=127.0.0.1%3A9%2Fd", None),
        200
    );
    assert_eq!(refused_writes(&a, &u), (5, 5));
}

/// A `Referer` whose characters do not end where this server's origin does (a multi-byte
/// character across that length; a byte that is not UTF-8 reads as one) is a foreign origin:
/// refused with 403, and the server keeps answering (a panic would have ended the connection's
/// thread without giving back its place among the `MAX_CONNS`, and in a release build the
/// daemon).
#[test]
fn a_referer_cut_inside_a_character_is_refused_and_the_server_keeps_serving() {
    let a = Admin::start(r#"{"events":{"incoming_call":"127.0.0.1:9/a"}}"#, &[]);
    let own = format!("http://{}", a.addr);
    let referer = format!("http://{}\u{fffd}", "1".repeat(own.len() - 8));
    for _ in 0..10 {
        let (st, _, body) = a.authed(
            "PUT",
            "/api/v1/events/incoming_call",
            &[("Referer", referer.as_str())],
            r#"{"url":"127.0.0.1:9/b"}"#,
        );
        assert_eq!(st, 403, "{body}");
    }
    let (st, _, body) = a.authed("GET", "/api/v1/config", &[], "");
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        json(&body)["events"]["incoming_call"]["url"],
        "127.0.0.1:9/a"
    );
}

/// A flood of connections from outside the allow-list gets its 403s, and the log gets at most
/// `WARN_BURST` (10) lines about it per minute, not one per connection.
#[test]
fn refused_addresses_do_not_flood_the_log() {
    let a = Admin::start(r#"{"events":{}}"#, &["--admin-allow", "10.0.0.0/8"]);
    for _ in 0..40 {
        let (st, _, _) = a.raw("GET", "/api/v1/status", &[], "");
        assert_eq!(st, 403);
    }
    let lines =
        a.d.log()
            .lines()
            .filter(|l| l.contains("is not in the allow-list"))
            .count();
    assert_eq!(lines, 10, "{}", a.d.log());
}

/// Over HTTPS, a client that trickles its TLS handshake (one byte a second: each read is within
/// the 5 s of silence allowed, but rustls keeps reading until the handshake is whole) is cut off
/// like a slow plain-HTTP client (5 s idle + 8 s for the request), not held for hours.
#[test]
fn a_trickled_tls_handshake_is_cut_off() {
    let dir = TempDir::new("admin-tls-slow");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let cert_file = dir.write("cert.pem", cert.pem());
    let key_file = dir.write("key.pem", key.serialize_pem());
    let a = Admin::start(
        r#"{"events":{}}"#,
        &[
            "--admin-cert",
            cert_file.to_str().unwrap(),
            "--admin-key",
            key_file.to_str().unwrap(),
        ],
    );
    let mut s = TcpStream::connect(a.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let t0 = Instant::now();
    // A handshake record announcing 16 KiB, then a byte a second of it.
    s.write_all(&[0x16, 0x03, 0x01, 0x40, 0x00]).unwrap();
    let closed = loop {
        let mut b = [0u8; 64];
        match s.read(&mut b) {
            Ok(0) => break true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break true,
        }
        if t0.elapsed() > Duration::from_secs(20) {
            break false;
        }
        if s.write_all(&[0]).is_err() {
            break true;
        }
    };
    let took = t0.elapsed();
    assert!(closed, "still open after {took:?}");
    assert!(took < Duration::from_secs(16), "closed only after {took:?}");
}

/// CPU time (user + system, in clock ticks) the process has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // After the command name's closing parenthesis: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// Out of file descriptors, every accept fails at once: the admin server waits between tries
/// instead of spinning on a core (a handset's SIP stack shares it), and serves the waiting
/// connection once a descriptor is free again.
#[test]
fn out_of_descriptors_the_admin_server_waits_instead_of_spinning() {
    let a = Admin::start(r#"{"events":{}}"#, &[]);
    let pid = a.d.pid();
    // The soft limit only (raising a hard limit again takes a privilege).
    let prlimit = |n: &str| {
        let st = Command::new("prlimit")
            .args(["--pid", &pid.to_string(), &format!("--nofile={n}:")])
            .status()
            .expect("prlimit (util-linux)");
        assert!(st.success());
    };
    // The lowest free descriptor number becomes the limit: no new descriptor fits.
    let open: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let free = (0..).find(|n| !open.contains(n)).unwrap();
    prlimit(&free.to_string());
    let mut s = TcpStream::connect(a.addr).unwrap();
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(pid) - before;
    prlimit("1024");
    assert!(
        used < 20,
        "{used} ticks of CPU in 2 s while out of descriptors"
    );
    assert!(
        a.d.log().contains("admin: cannot accept a connection"),
        "{}",
        a.d.log()
    );
    // The connection that waited is served.
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = String::new();
    let _ = s.read_to_string(&mut got);
    assert!(got.starts_with("HTTP/1.1 401"), "{got}");
}

/// A TCP connection to `to` from the loopback address `from` (any of 127.0.0.0/8): another
/// client address on the same machine.
fn connect_from(from: std::net::Ipv4Addr, to: SocketAddr) -> TcpStream {
    use nix::sys::socket::{bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
    use std::os::fd::AsRawFd;
    let SocketAddr::V4(to) = to else {
        panic!("an IPv4 admin address: {to}")
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("socket");
    bind(
        fd.as_raw_fd(),
        &SockaddrIn::from(std::net::SocketAddrV4::new(from, 0)),
    )
    .unwrap_or_else(|e| panic!("bind {from}: {e}"));
    connect(fd.as_raw_fd(), &SockaddrIn::from(to)).expect("connect");
    TcpStream::from(fd)
}

/// What the server sent on `s` until it closed, or until `wait` passed without a byte (empty:
/// nothing, the connection is held).
fn answered_within(s: &mut TcpStream, wait: Duration) -> String {
    s.set_read_timeout(Some(wait)).expect("timeout");
    let mut got = Vec::new();
    let mut b = [0u8; 1024];
    while let Ok(n @ 1..) = s.read(&mut b) {
        got.extend_from_slice(&b[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// `GET /api/v1/status` from `from` on a fresh connection: the answer's status line.
fn status_line_from(a: &Admin, from: std::net::Ipv4Addr) -> String {
    let mut s = connect_from(from, a.addr);
    s.write_all(format!("GET /api/v1/status HTTP/1.1\r\nHost: {}\r\n\r\n", a.addr).as_bytes())
        .expect("send");
    let head = answered_within(&mut s, PATIENCE);
    head.lines().next().unwrap_or_default().to_string()
}

/// MAX_CONNS_PER_ADDR: a client that opens connections and sends nothing — as one that
/// reconnects whenever they time out would, to keep the admin server busy — holds 6 of the 8
/// places at most (a browser's own limit per server): its next ones are answered 503 at once,
/// and a client at another address is still served. The 8 places are still the bound over all
/// addresses; a place given back is taken again.
#[test]
fn one_address_cannot_hold_every_admin_connection() {
    use std::net::Ipv4Addr;
    let a = Admin::start(r#"{"events":{}}"#, &[]);
    let one = Ipv4Addr::new(127, 0, 0, 1);
    let mut held: Vec<TcpStream> = (0..8).map(|_| connect_from(one, a.addr)).collect();
    // A held connection gets nothing (until its 5 s of silence end); a refused one its 503 at
    // once, then the close.
    let answers: Vec<String> = held
        .iter_mut()
        .enumerate()
        .map(|(i, s)| match i {
            0..6 => answered_within(s, Duration::from_millis(300)),
            _ => answered_within(s, PATIENCE),
        })
        .collect();
    assert!(
        answers[..6].iter().all(String::is_empty),
        "one of the first 6 was answered: {answers:?}"
    );
    assert!(
        answers[6..]
            .iter()
            .all(|a| a.starts_with("HTTP/1.1 503") && a.ends_with("from this address\n")),
        "one address held more than 6 places: {answers:?}"
    );
    held.truncate(6);
    // Another address is served meanwhile (401: no credentials; not 503).
    let two = Ipv4Addr::new(127, 0, 0, 2);
    let line = status_line_from(&a, two);
    assert!(line.starts_with("HTTP/1.1 401"), "{line:?}");
    // The 8 in all: 2 more held from a third address, then a fourth address is refused.
    // (The place of the request just served may still be taken for a moment after its close.)
    let three = Ipv4Addr::new(127, 0, 0, 3);
    let deadline = Instant::now() + PATIENCE;
    let mut more = Vec::new();
    while more.len() < 2 {
        let mut s = connect_from(three, a.addr);
        match answered_within(&mut s, Duration::from_millis(500)) {
            got if got.is_empty() => more.push(s),
            got => assert!(
                got.ends_with("busy: too many admin connections\n") && Instant::now() < deadline,
                "{got:?}"
            ),
        }
    }
    let line = status_line_from(&a, Ipv4Addr::new(127, 0, 0, 4));
    assert!(line.starts_with("HTTP/1.1 503"), "{line:?}");
    // The first address's places come back when its connections close.
    drop(held);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let line = status_line_from(&a, one);
        if line.starts_with("HTTP/1.1 401") {
            break;
        }
        assert!(Instant::now() < deadline, "places not given back: {line:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
