//! Signed requests: `listen --secret` against requests signed by the phone's code, and the
//! receivers' manual's verifiers (docs/RECEIVER.md, Python and JavaScript) run as written.

use crate::common;

use common::*;
use event_notify::sign::{sign, ID_HEADER, SIGNATURE_HEADER};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

const SECRET: &str = "whsec-7f3a-never-printed";
const ID: &str = "000b82123456-4-19";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// One request: (method, target, body, signature header or none).
struct Case {
    method: &'static str,
    target: &'static str,
    body: &'static str,
    signature: Option<String>,
    /// What a verifier must say (read by the verifier tests, which run natively only).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    ok: bool,
    /// What `listen` must print under it.
    line: &'static str,
}

fn cases() -> Vec<Case> {
    let t = now();
    let s = SECRET.as_bytes();
    let body = "{\"event\":\"terminate_call\",\"call_id\":\"a84b\"}";
    vec![
        Case {
            method: "GET",
            target: "/in?from=1002&name=Bob%20%26%20Alice",
            body: "",
            signature: Some(
                sign(s, t, ID, "GET", "/in?from=1002&name=Bob%20%26%20Alice", b"").to_string(),
            ),
            ok: true,
            line: "  signature ok",
        },
        Case {
            method: "POST",
            target: "/cdr",
            body,
            signature: Some(sign(s, t, ID, "POST", "/cdr", body.as_bytes()).to_string()),
            ok: true,
            line: "  signature ok",
        },
        Case {
            // The body changed on the way: one digit.
            method: "POST",
            target: "/cdr",
            body: "{\"event\":\"terminate_call\",\"call_id\":\"a84c\"}",
            signature: Some(sign(s, t, ID, "POST", "/cdr", body.as_bytes()).to_string()),
            ok: false,
            line:
                "  signature refused: signature mismatch (wrong secret, or the request was changed)",
        },
        Case {
            method: "POST",
            target: "/cdr",
            body,
            signature: Some(
                sign(b"another-secret", t, ID, "POST", "/cdr", body.as_bytes()).to_string(),
            ),
            ok: false,
            line:
                "  signature refused: signature mismatch (wrong secret, or the request was changed)",
        },
        Case {
            // Signed correctly, but 20 minutes ago: a replay.
            method: "POST",
            target: "/cdr",
            body,
            signature: Some(sign(s, t - 1200, ID, "POST", "/cdr", body.as_bytes()).to_string()),
            ok: false,
            line: "  signature refused: timestamp 12",
        },
        Case {
            method: "GET",
            target: "/in",
            body: "",
            signature: None,
            ok: false,
            line: "  signature refused: no X-Event-Notify-Signature header",
        },
    ]
}

fn raw(c: &Case) -> Vec<u8> {
    let mut r = format!(
        "{} {} HTTP/1.1\r\nHost: crm\r\nConnection: close\r\n{ID_HEADER}: {ID}\r\n",
        c.method, c.target
    );
    if let Some(sig) = &c.signature {
        r.push_str(&format!("{SIGNATURE_HEADER}: {sig}\r\n"));
    }
    if !c.body.is_empty() {
        r.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            c.body.len()
        ));
    }
    r.push_str("\r\n");
    r.push_str(c.body);
    r.into_bytes()
}

#[test]
fn listen_secret_accepts_good_and_refuses_changed_wrong_old_missing() {
    listen_checks(&["--secret", SECRET]);
}

#[test]
fn listen_secret_file_checks_the_same_and_keeps_the_secret_off_the_command_line() {
    let dir = std::env::temp_dir().join(format!("en-signing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("secret");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    listen_checks(&["--secret-file", file.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `listen` with `secret_args` checks every case as expected and never prints the secret.
fn listen_checks(secret_args: &[&str]) {
    let cases = cases();
    let mut child = Command::new(bin())
        .args(["listen", "--bind", "127.0.0.1:0"])
        .args(secret_args)
        .args(["--count", &cases.len().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn listen");
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).expect("stderr");
    let addr: SocketAddr = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected: {first}"))
        .parse()
        .unwrap();
    // One at a time, so the blocks come out in this order.
    for c in &cases {
        let answer = http_exchange(addr, &raw(c));
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}\n{out}\n{rest}");
    let blocks: Vec<&str> = out
        .split_inclusive('\n')
        .filter(|l| l.starts_with("  signature "))
        .collect();
    assert_eq!(blocks.len(), cases.len(), "{out}");
    for (c, got) in cases.iter().zip(&blocks) {
        assert!(
            got.starts_with(c.line),
            "{} {}: got {got:?}\n{out}",
            c.method,
            c.target
        );
    }
    for text in [&out, &first, &rest] {
        assert!(!text.contains(SECRET), "the secret was printed:\n{text}");
    }
}

#[test]
fn listen_secret_usage_never_echoes_the_secret() {
    let (code, out, err) = run_cli(&["listen", "--secret", SECRET, "--bogus"]);
    assert_eq!(code, 2);
    assert!(!out.contains(SECRET) && !err.contains(SECRET), "{out}{err}");
    let (code, _, err) = run_cli(&["listen", "--bind", "127.0.0.1:0", "--secret="]);
    assert_eq!(code, 2, "{err}");
}

// The helpers of the manual's verifiers below, built where those tests run (x86_64 only).

#[cfg(target_arch = "x86_64")]
/// The code blocks of one language in docs/RECEIVER.md, joined.
fn doc_block(lang: &str) -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/RECEIVER.md"))
        .expect("docs/RECEIVER.md");
    let fence = format!("```{lang}\n");
    let start = doc
        .find(&fence)
        .unwrap_or_else(|| panic!("no {lang} block"))
        + fence.len();
    let len = doc[start..].find("```").expect("closing fence");
    doc[start..start + len].to_string()
}

#[cfg(target_arch = "x86_64")]
fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(target_arch = "x86_64")]
/// Each case as one line for the harness: method, target, hex body, signature, id.
fn case_lines(cases: &[Case]) -> String {
    cases
        .iter()
        .map(|c| {
            format!(
                "{}\t{}\t{}\t{}\t{ID}\n",
                c.method,
                c.target,
                hex(c.body.as_bytes()),
                c.signature.clone().unwrap_or_default()
            )
        })
        .collect()
}

#[cfg(target_arch = "x86_64")]
fn run_verifier(program: &str, file_name: &str, code: &str, input: &str) -> String {
    use std::io::Write;
    use std::time::Duration;
    let dir = TempDir::new("verifier");
    let path = dir.write(file_name, code);
    let mut child = Command::new(program)
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e} (make setup-host installs it)"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "{program} hangs");
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{program}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

// The verifiers run as host programs (python3, node); under qemu-user the test binary is ARM but
// these stay host tools, which is what this test is about: the manual's code, not the build.
#[cfg(target_arch = "x86_64")]
#[test]
fn the_manuals_python_verifier_agrees() {
    let cases = cases();
    let harness = format!(
        "{}\nimport sys\nfor line in sys.stdin:\n    m, t, b, s, i = line.rstrip('\\n').split('\\t')\n    \
         h = {{'X-Event-Notify-Signature': s, 'X-Event-Notify-Id': i}}\n    \
         print(verify({SECRET:?}.encode(), h, m, t, bytes.fromhex(b)))\n",
        doc_block("python")
    );
    let got = run_verifier("python3", "verify.py", &harness, &case_lines(&cases));
    let want: String = cases
        .iter()
        .map(|c| if c.ok { "True\n" } else { "False\n" })
        .collect();
    assert_eq!(got, want);
}

#[cfg(target_arch = "x86_64")]
#[test]
fn the_manuals_javascript_verifier_agrees() {
    let cases = cases();
    let harness = format!(
        "{}\nconst lines = require('fs').readFileSync(0, 'utf8').split('\\n').filter(Boolean);\n\
         for (const line of lines) {{\n  const [m, t, b, s, i] = line.split('\\t');\n  \
         const h = {{'x-event-notify-signature': s, 'x-event-notify-id': i}};\n  \
         console.log(verify({SECRET:?}, h, m, t, Buffer.from(b, 'hex')));\n}}\n",
        doc_block("javascript")
    );
    let got = run_verifier("node", "verify.js", &harness, &case_lines(&cases));
    let want: String = cases
        .iter()
        .map(|c| if c.ok { "true\n" } else { "false\n" })
        .collect();
    assert_eq!(got, want);
}
