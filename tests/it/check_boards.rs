//! cross/check-boards.sh (the `make check-boards` step) against the repo's boards, and against
//! copies of one board spoiled one way at a time: each spoiled copy must be reported, with the
//! line `event-notify check --board` gives for it.

use crate::common;

use common::TempDir;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_event-notify");
const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// (exit code, stdout) of the script over `boards` (None: the repo's board/).
fn check_boards(boards: Option<&Path>) -> (i32, String) {
    let mut c = Command::new("sh");
    c.arg(Path::new(REPO).join("cross/check-boards.sh"))
        .arg(BIN);
    if let Some(b) = boards {
        c.arg(b);
    }
    let out = c.output().expect("sh");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// A copy of board/GXV3370 in `dir`, with `edit` applied to the text of its file `name`.
fn spoiled(dir: &TempDir, name: &str, edit: impl Fn(&str) -> String) -> std::path::PathBuf {
    let src = Path::new(REPO).join("board/GXV3370");
    let dst = dir.join("GXV3370");
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    let f = dst.join(name);
    let text = std::fs::read_to_string(&f).unwrap();
    let changed = edit(&text);
    assert_ne!(changed, text, "the edit of {name} changed nothing");
    std::fs::write(&f, changed).unwrap();
    dir.path().to_path_buf()
}

#[test]
fn the_repos_boards_pass() {
    let n = std::fs::read_dir(Path::new(REPO).join("board"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count();
    let (code, out) = check_boards(None);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.trim(), format!("check-boards: {n} boards ok"));
}

#[test]
fn a_copy_of_a_good_board_passes() {
    let dir = TempDir::new("boards-good");
    let boards = spoiled(&dir, "board.json", |t| t.replace("V1.2A", "V1.3"));
    let (code, out) = check_boards(Some(&boards));
    assert_eq!(
        (code, out.trim()),
        (0, "check-boards: 1 boards ok"),
        "{out}"
    );
}

#[test]
fn a_board_file_with_an_unknown_field_is_reported_by_check() {
    let dir = TempDir::new("boards-field");
    let boards = spoiled(&dir, "board.json", |t| {
        t.replacen('{', "{\n  \"colour\": \"red\",", 1)
    });
    let (code, out) = check_boards(Some(&boards));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("check-boards: GXV3370: board.json: error: ")
            && out.contains("unknown field `colour`"),
        "{out}"
    );
}

#[test]
fn a_board_file_with_a_bad_interface_name_is_reported_by_check() {
    let dir = TempDir::new("boards-iface");
    let boards = spoiled(&dir, "board.json", |t| t.replace("\"eth0\"", "\"eth0:1\""));
    let (code, out) = check_boards(Some(&boards));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("check-boards: GXV3370: board.json: error: interface: "),
        "{out}"
    );
}

#[test]
fn a_sample_config_with_a_bad_template_is_reported() {
    let dir = TempDir::new("boards-config");
    let boards = spoiled(&dir, "config.json", |t| t.replacen("$", "${", 1));
    let (code, out) = check_boards(Some(&boards));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("check-boards: GXV3370: config.json: "),
        "{out}"
    );
}

#[test]
fn an_init_file_naming_another_socket_is_reported() {
    let dir = TempDir::new("boards-init");
    let boards = spoiled(&dir, "event-notify.rc", |t| {
        t.replace("event-notify.sock", "other.sock")
    });
    let (code, out) = check_boards(Some(&boards));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("GXV3370: event-notify.rc does not use the socket"),
        "{out}"
    );
}
