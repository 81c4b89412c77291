//! Building C programs against the event-notify static library, for tests/it/ffi_c.rs and
//! tests/it/ffi_header.rs (`#[path = "../c/support.rs"] mod support;` in tests/it/main.rs).
//!
//! The library is built by cargo itself: `[lib] crate-type` includes `staticlib`, so the
//! `libevent_notify.a` of the very build that made this test sits next to the test binary (in
//! `target/<profile>/deps/`). The armv7 one is built on demand with a nested
//! `cargo build --lib --target armv7-unknown-linux-gnueabihf` (linker and `+crt-static` come from
//! .cargo/config.toml).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub const ARMV7: &str = "armv7-unknown-linux-gnueabihf";

/// The repository.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/<profile>/deps/` of this test binary.
fn deps_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent().expect("deps dir").to_path_buf()
}

/// The cargo target directory this test was built in (`<dir>/<profile>/deps/<test>`, host builds).
pub fn target_dir() -> PathBuf {
    deps_dir()
        .ancestors()
        .nth(2)
        .expect("target dir")
        .to_path_buf()
}

/// The static library built together with this test (same target, same profile).
pub fn own_staticlib() -> PathBuf {
    let lib = deps_dir().join("libevent_notify.a");
    assert!(
        lib.is_file(),
        "{} is missing: Cargo.toml's [lib] crate-type must include \"staticlib\"",
        lib.display()
    );
    lib
}

/// The shared library built together with this test (glibc hosts only).
pub fn own_sharedlib() -> PathBuf {
    let lib = deps_dir().join("libevent_notify.so");
    assert!(
        lib.is_file(),
        "{} is missing: Cargo.toml's [lib] crate-type must include \"cdylib\"",
        lib.display()
    );
    lib
}

/// A C toolchain for one target: compiler, its extra flags, nm, and how to run what it made.
pub struct Toolchain {
    pub cc: &'static str,
    pub nm: &'static str,
    pub flags: &'static [&'static str],
    /// Prefix of the command line that runs a program it made (e.g. `qemu-arm`).
    pub run: &'static [&'static str],
}

/// The toolchain for the target this test was built for: x86_64 or armv7 glibc (the tests that
/// compile C are built only for those; their `#[cfg]` says so).
pub fn native() -> Toolchain {
    if cfg!(target_arch = "arm") {
        armv7()
    } else {
        Toolchain {
            cc: "cc",
            nm: "nm",
            flags: &[],
            run: &[],
        }
    }
}

/// arm-linux-gnueabihf-gcc, linked static like the handset's binaries, run by qemu-arm.
pub fn armv7() -> Toolchain {
    Toolchain {
        cc: "arm-linux-gnueabihf-gcc",
        nm: "arm-linux-gnueabihf-nm",
        flags: &["-static"],
        // Static, so qemu-arm needs no sysroot. Also from a test that itself runs under
        // qemu-arm: qemu-arm is a host program, which the kernel runs natively (no binfmt_misc).
        run: &["qemu-arm"],
    }
}

/// Strict C99: what a firmware build with warnings as errors would use.
pub const CFLAGS: &[&str] = &[
    "-std=c99",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-pedantic",
    "-O1",
];

/// What the Rust standard library needs from the C side when linked statically.
pub const LIBS: &[&str] = &["-lpthread", "-ldl", "-lm"];

/// Compiles `sources` and links them with `lib` into `out`; panics with the compiler's output.
pub fn build_c(tc: &Toolchain, sources: &[&Path], lib: &Path, out: &Path) {
    build_c_with(tc, sources, lib, &[], out)
}

/// As [`build_c`], with more flags for the compiler driver.
pub fn build_c_with(tc: &Toolchain, sources: &[&Path], lib: &Path, flags: &[&str], out: &Path) {
    let mut cmd = Command::new(tc.cc);
    cmd.args(CFLAGS)
        .args(tc.flags)
        .args(flags)
        .arg("-I")
        .arg(repo().join("include"))
        .args(sources)
        .arg(lib)
        .args(LIBS)
        .arg("-o")
        .arg(out);
    let o = cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {} ({e}): is it installed? (cross/setup.sh)",
            tc.cc
        )
    });
    assert!(
        o.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A command that runs `program` (through the toolchain's runner).
pub fn command(tc: &Toolchain, program: &Path) -> Command {
    match tc.run.split_first() {
        None => Command::new(program),
        Some((runner, args)) => {
            let mut c = Command::new(runner);
            c.args(args).arg(program);
            c
        }
    }
}

/// Builds the armv7 static library with a nested cargo and returns its path.
///
/// Built as `cargo test --target armv7-...` builds the library for the ARM test suite (`make
/// test-arm`): the `test` profile (dev's settings; a plain `cargo build` would record the `dev`
/// profile and each build would redo the other's), and without the variables cargo sets for
/// this test process (CARGO_PKG_NAME, CARGO_MANIFEST_DIR, ...): ring's build script watches
/// them, and a change would rebuild ring and all above it. So the two builds share one library.
///
/// In this test's own target directory, unless `EN_ARMV7_TARGET_DIR` names another: `make test`
/// builds the ARM test suite beside the host tests in a target directory of its own and points
/// this at it, so the armv7 library is compiled once (cargo waits for that build's lock, then
/// finds the library up to date).
pub fn armv7_staticlib() -> PathBuf {
    let target = std::env::var_os("EN_ARMV7_TARGET_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(target_dir);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(&cargo);
    for (name, _) in std::env::vars_os() {
        let n = name.to_string_lossy();
        if ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_BIN_"]
            .iter()
            .any(|p| n.starts_with(p))
            || [
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "OUT_DIR",
            ]
            .contains(&n.as_ref())
        {
            cmd.env_remove(&name);
        }
    }
    let o = cmd
        .current_dir(repo())
        .args(["build", "--lib", "--profile", "test", "--target", ARMV7])
        .arg("--target-dir")
        .arg(&target)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cargo}: {e}"));
    assert!(
        o.status.success(),
        "cargo build --lib --profile test --target {ARMV7} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The test profile's directory is dev's, `debug`.
    let lib = target.join(ARMV7).join("debug").join("libevent_notify.a");
    assert!(lib.is_file(), "{} was not built", lib.display());
    lib
}

/// The `en_*` functions a library defines, by `nm` (`dynamic`: the shared library's exports).
pub fn exported_en_functions(nm: &str, lib: &Path, dynamic: bool) -> Vec<String> {
    let mut cmd = Command::new(nm);
    if dynamic {
        cmd.arg("-D");
    }
    let o = cmd
        .args(["--defined-only", "-g"])
        .arg(lib)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {nm}: {e}"));
    assert!(
        o.status.success(),
        "{nm} {} failed: {}",
        lib.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace().rev();
            let name = w.next()?;
            let kind = w.next()?;
            (kind == "T" && name.starts_with("en_")).then(|| name.to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}
