//! Stripped binary size per target, with and without TLS.
//!
//! Built with `cargo build --release --target T [--no-default-features --features import,listen]`
//! (without TLS: only TLS is left out, so the row compares with earlier ones) into
//! target/bench-size/{tls,notls} (under `$CARGO_TARGET_DIR` if set) (own target folders: switching features never rebuilds the
//! developers' target/release), with the linkers of .cargo/config.toml. A target that cannot be
//! built here is reported n/a with the reason.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Size {
    pub key: String,
    pub label: String,
    pub bytes: Result<u64, String>,
    /// (peer name, key of its figure)
    pub peers: Vec<(String, String)>,
}

const TARGETS: [(&str, &str, &str); 3] = [
    ("x86_64", "x86_64-unknown-linux-gnu", "strip"),
    (
        "armv7",
        "armv7-unknown-linux-gnueabihf",
        "arm-linux-gnueabihf-strip",
    ),
    (
        "aarch64",
        "aarch64-unknown-linux-musl",
        "aarch64-linux-gnu-strip",
    ),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `$CARGO_TARGET_DIR`, else target/ in the crate.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if Path::new(&d).is_absolute() => PathBuf::from(d),
        Some(d) => root().join(d),
        None => root().join("target"),
    }
}

fn size_dir(tls: bool) -> PathBuf {
    target_dir()
        .join("bench-size")
        .join(if tls { "tls" } else { "notls" })
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

fn build(triple: &str, tls: bool) -> Result<PathBuf, String> {
    let dir = size_dir(tls);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root())
        .env("CARGO_TARGET_DIR", &dir)
        .args([
            "build",
            "--release",
            "--bin",
            "event-notify",
            "--target",
            triple,
        ])
        .stdin(Stdio::null());
    if !tls {
        cmd.args(["--no-default-features", "--features", "import,listen"]);
    }
    cargo_build(cmd, &dir, &format!("build-{triple}.log"))?;
    Ok(dir.join(triple).join("release/event-notify"))
}

/// The PC build as `make build` and `make demo` make it (`cargo build --release`, default
/// features, panics abort), into target/bench-pc: the daemon the bench measures. Not the binary
/// `cargo bench` builds beside the bench: cargo builds the library for a bench with panics
/// unwinding, and that binary links it (about 230 KB more code, landing pads and unwind tables):
/// a program no user runs (docs/PERFORMANCE.md, "The daemon the bench measures").
pub fn build_pc() -> Result<PathBuf, String> {
    let dir = target_dir().join("bench-pc");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("bench: building the daemon as users do: cargo build --release (target/bench-pc)");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root())
        .env("CARGO_TARGET_DIR", &dir)
        .args(["build", "--release", "--bin", "event-notify"])
        .stdin(Stdio::null());
    cargo_build(cmd, &dir, "build-pc.log")?;
    Ok(dir.join("release/event-notify"))
}

/// Runs a prepared `cargo build` command, writes its stderr to `dir/log_name` (whatever the
/// outcome), and on failure says where the log is with its last two lines.
fn cargo_build(mut cmd: Command, dir: &Path, log_name: &str) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("cargo: {e}"))?;
    let _ = std::fs::create_dir_all(dir);
    let log = dir.join(log_name);
    let _ = std::fs::write(&log, &out.stderr);
    if !out.status.success() {
        return Err(format!(
            "build failed ({}): {}",
            log.display(),
            last_lines(&String::from_utf8_lossy(&out.stderr), 2)
        ));
    }
    Ok(())
}

/// A handset-like build for the memory rows: native x86_64, so the bench can run it, but linked
/// as the handsets' binaries are: static, not position-independent (armv7 and aarch64-musl do not
/// make static-PIE binaries, x86_64 does by default: its start-up relocations would dirty pages
/// the handsets never touch), the release profile, with the features of a handset's firmware
/// build: TLS and the admin server, without the PC-side tools (`--no-default-features
/// --features tls`: no `import`, no `listen`; docs/FIRMWARE.md).
pub struct Handset {
    /// Row keys `rss.{key}.*`; built into target/bench-size/{key}.
    pub key: &'static str,
    pub triple: &'static str,
    rustflags: &'static str,
    /// What it stands for, in the row's label.
    pub label: &'static str,
    /// The flash-size build (as `make cross-small`): nightly cargo rebuilds std for size
    /// (`-Z build-std`, `-Z build-std-features=optimize_for_size`), panics abort on the spot
    /// (`-C panic=immediate-abort`) and carry no source locations (`-Z location-detail=none`).
    small: bool,
}

pub const HANDSETS: [Handset; 3] = [
    Handset {
        key: "static",
        triple: "x86_64-unknown-linux-gnu",
        // GNU ld as for armv7 (rustc's default on x86_64-linux-gnu is rust-lld), so that the
        // code layout is made the same way (cross/hot/link-gcc).
        rustflags: "-C target-feature=+crt-static -C relocation-model=static -C link-arg=-fuse-ld=bfd",
        label: "glibc static, as armv7; features tls, no import/listen",
        small: false,
    },
    Handset {
        key: "musl",
        triple: "x86_64-unknown-linux-musl",
        rustflags: "-C relocation-model=static",
        label: "musl static, as aarch64; features tls, no import/listen",
        small: false,
    },
    Handset {
        key: "musl_small",
        triple: "x86_64-unknown-linux-musl",
        rustflags: "-Zunstable-options -C panic=immediate-abort -Z location-detail=none -C relocation-model=static",
        label: "musl static, flash-size build; features tls, no import/listen",
        small: true,
    },
];

impl Handset {
    /// Builds it into target/bench-size/{key}.
    pub fn build(&self) -> Result<PathBuf, String> {
        let dir = target_dir().join("bench-size").join(self.key);
        // `+nightly` is understood by rustup's cargo on PATH, not by the toolchain's own cargo
        // that `CARGO` names.
        let cargo = match (self.small, std::env::var("CARGO")) {
            (false, Ok(c)) => c,
            _ => "cargo".into(),
        };
        eprintln!(
            "bench: building {} ({}), TLS (target/bench-size/{})",
            self.triple, self.label, self.key
        );
        let mut cmd = Command::new(cargo);
        if self.small {
            cmd.arg("+nightly");
        }
        cmd.current_dir(root())
            .env("CARGO_TARGET_DIR", &dir)
            .env("RUSTFLAGS", self.rustflags)
            .args(["build", "--release", "--bin", "event-notify", "--target"])
            .arg(self.triple)
            .args(["--no-default-features", "--features", "tls"])
            .stdin(Stdio::null());
        if self.small {
            cmd.args([
                "-Z",
                "build-std=std,panic_abort",
                "-Z",
                "build-std-features=optimize_for_size",
            ]);
        }
        // Linked as the handsets' builds are (`make cross`, cross/small.sh): through
        // cross/hot/link-gcc, which places the functions of cross/hot/functions.txt first
        // (docs/PERFORMANCE.md, "Code layout"), with this machine's gcc as the real driver.
        let linker = format!(
            "CARGO_TARGET_{}_LINKER",
            self.triple.replace('-', "_").to_uppercase()
        );
        cmd.env(linker, root().join("cross/hot/x86_64-linux-gnu-gcc"))
            .env("EN_HOT_REPORT", dir.join("hot.txt"));
        let _ = std::fs::remove_file(dir.join("hot.txt"));
        // ring's C and assembly: this machine's gcc (the code needs no C library headers
        // beyond the compiler's own); there is no x86_64-linux-musl-gcc to find.
        let cc = format!("CC_{}", self.triple.replace('-', "_"));
        if std::env::var_os(&cc).is_none() {
            cmd.env(&cc, "gcc");
        }
        cargo_build(cmd, &dir, "build.log")?;
        Ok(self.bin())
    }

    /// Where [`Handset::build`] leaves its binary (for a run without builds).
    pub fn bin(&self) -> PathBuf {
        target_dir()
            .join("bench-size")
            .join(self.key)
            .join(self.triple)
            .join("release/event-notify")
    }
}

/// Size after stripping a copy with the target's strip (the release profile strips already;
/// this makes sure).
fn stripped_size(bin: &Path, strip: &str) -> Result<u64, String> {
    let meta = std::fs::metadata(bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    let copy = bin.with_extension("stripped");
    if std::fs::copy(bin, &copy).is_err() {
        return Ok(meta.len());
    }
    let ok = Command::new(strip)
        .arg(&copy)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let n = if ok {
        std::fs::metadata(&copy)
            .map(|m| m.len())
            .unwrap_or(meta.len())
    } else {
        meta.len()
    };
    let _ = std::fs::remove_file(&copy);
    Ok(n.min(meta.len()))
}

/// Builds (if `build`) and measures every target × {tls, no tls}. Without `build`, reports what
/// an earlier full bench left, and `this_bin` (the binary under test) for x86_64 with TLS.
pub fn measure(build_them: bool, this_bin: &Path) -> Vec<Size> {
    let mut out = Vec::new();
    for tls in [true, false] {
        for (arch, triple, strip) in TARGETS {
            let key = format!("size.{arch}.{}", if tls { "tls" } else { "notls" });
            let label = format!(
                "stripped size: {arch} ({}){}",
                triple.split('-').skip(2).collect::<Vec<_>>().join("-"),
                if tls { ", TLS" } else { ", no TLS" }
            );
            let bytes = if build_them {
                eprintln!("bench: building {triple} tls={tls} (target/bench-size)");
                build(triple, tls).and_then(|p| stripped_size(&p, strip))
            } else {
                let p = size_dir(tls).join(triple).join("release/event-notify");
                if p.is_file() {
                    stripped_size(&p, strip)
                } else if tls && arch == "x86_64" {
                    stripped_size(this_bin, strip)
                } else {
                    Err("not built in this mode (the full bench builds it)".into())
                }
            };
            let peers = match arch {
                "x86_64" => vec![
                    (
                        "curl + libcurl".to_string(),
                        "size.peer.curl.x86_64".to_string(),
                    ),
                    (
                        "busybox".to_string(),
                        "size.peer.busybox.x86_64".to_string(),
                    ),
                ],
                a => vec![(
                    "busybox-static".to_string(),
                    format!("size.peer.busybox.{a}"),
                )],
            };
            out.push(Size {
                key,
                label,
                bytes,
                peers,
            });
        }
    }
    // The flash-size build of the primary target (cross/small.sh: Thumb-2 code, std rebuilt for
    // size, panic=immediate-abort; a handset's features without TLS: no import, no listen).
    for (arch, triple, _) in &TARGETS[1..2] {
        let bytes = if build_them {
            eprintln!("bench: building the flash-size {triple} (cross/small.sh)");
            small(triple)
        } else {
            Err("not built in this mode (the full bench builds it)".into())
        };
        out.push(Size {
            key: format!("size.{arch}.notls.small"),
            label: format!(
                "stripped size: {arch}, flash-size build (cross/small.sh: Thumb-2; no TLS, import, listen)"
            ),
            bytes,
            peers: vec![(
                "busybox-static".to_string(),
                format!("size.peer.busybox.{arch}"),
            )],
        });
    }
    out
}

/// `cross/small.sh TRIPLE notls`: prints "SIZE PATH".
fn small(triple: &str) -> Result<u64, String> {
    let out = Command::new("sh")
        .current_dir(root())
        .args(["cross/small.sh", triple, "notls"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cross/small.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cross/small.sh failed: {}",
            last_lines(&String::from_utf8_lossy(&out.stderr), 2)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("cross/small.sh said {text:?}"))
}

fn file_size(p: &Path) -> Result<u64, String> {
    std::fs::metadata(p)
        .map(|m| m.len())
        .map_err(|e| format!("{}: {e}", p.display()))
}

/// The peers' sizes: curl with libcurl, and busybox (which has wget) per architecture; the ARM
/// busybox-static binaries are the ones cross/setup.sh fetched for the QEMU images.
pub fn peers() -> Vec<(String, Result<u64, String>)> {
    let libcurl = Path::new("/usr/lib/x86_64-linux-gnu/libcurl.so.4");
    let curl = file_size(Path::new("/usr/bin/curl")).and_then(|c| {
        let real = std::fs::canonicalize(libcurl).map_err(|e| format!("libcurl: {e}"))?;
        Ok(c + file_size(&real)?)
    });
    let cache = root().join("cross/cache");
    vec![
        ("size.peer.curl.x86_64".into(), curl),
        (
            "size.peer.busybox.x86_64".into(),
            file_size(Path::new("/usr/bin/busybox")),
        ),
        (
            "size.peer.busybox.armv7".into(),
            file_size(&cache.join("armhf/root/bin/busybox"))
                .map_err(|_| "no armhf busybox-static (cross/setup.sh fetches it)".to_string()),
        ),
        (
            "size.peer.busybox.aarch64".into(),
            file_size(&cache.join("arm64/root/bin/busybox"))
                .map_err(|_| "no arm64 busybox-static (cross/setup.sh fetches it)".to_string()),
        ),
    ]
}
