//! The `event-notify` command line: one binary, subcommands (like busybox).
//!
//! Exit codes: 0 success, 1 the input was refused (bad config, unknown event), 2 usage error,
//! 3 the daemon could not be reached.

use crate::client::{self, Client};
use crate::core::config::{Board, Config, Method};
use crate::core::event::Event;
use crate::core::template::{Encoding, BODY_CAP, URL_CAP};
use crate::core::var::{Var, Vars};
use crate::core::wire;
use crate::daemon::{self, DaemonError};
use std::path::PathBuf;

pub const EXIT_OK: i32 = 0;
pub const EXIT_REFUSED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_UNREACHABLE: i32 = 3;

const MAIN_HELP: &str = "\
event-notify: phone events to HTTP requests (Maintenance > Event Notify)

usage: event-notify COMMAND [ARGS]   (event-notify COMMAND --help for more)

commands:
  run       --config FILE [--socket PATH] [--board FILE] [--baresip HOST:PORT]   the daemon
            [--admin ADDR:PORT --admin-credentials FILE]   with the admin server (docs/ADMIN.md)
  passwd    --file PATH [--user NAME]               make the admin server's credentials file
  emit      VERB [key=value ...] [--socket PATH]    hand one event or transition to the daemon
  expand    --config FILE EVENT [key=value ...]     print the request EVENT would send
  check     --config FILE [--board FILE]            validate a config (and a board file)
  status    [--socket PATH]                         the daemon's counters and last results
  listen    --bind ADDR:PORT                        a receiver that prints each request
  import    FILE [--from VENDOR] [--merge CONFIG]    another vendor's action URLs as a config
  events                                            the event keys and their aliases
  variables                                         the $variables and their aliases

exit codes: 0 success, 1 input refused, 2 usage error, 3 daemon unreachable
";

const RUN_HELP: &str = "\
usage: event-notify run [--config FILE] [--socket PATH] [--board FILE] [--baresip HOST:PORT]
         [--admin ADDR:PORT --admin-credentials FILE [--admin-allow LIST]
          [--admin-cert PEM --admin-key PEM] [--admin-basic loopback|any]]

Runs the daemon. --config defaults to the board's config path. The socket is --socket, else
$EVENT_NOTIFY_SOCKET, else the board's, else /run/event-notify.sock (mode 0660).
SIGHUP or a change of the config file reloads it (an invalid file is refused and the running
config stays). SIGTERM/SIGINT stop after flushing the outbox for up to delivery.shutdown_flush_ms.
Log level: EVENT_NOTIFY_LOG=error|warn|info|debug|trace (stderr).
--admin serves the admin API, the CTI request and the page (HTTPS with --admin-cert/--admin-key);
it needs the credentials file `event-notify passwd` makes. --admin-allow: client addresses
allowed (CIDR, a.b.c.d, 192.168.1.*; comma-separated). Basic over plain HTTP is taken from
loopback only, unless --admin-basic any. Defaults come from the board file's \"admin\" object.
";

const PASSWD_HELP: &str = "\
usage: event-notify passwd --file PATH [--user NAME]

Writes the admin server's credentials file (mode 0600): the user (default admin), a salted
PBKDF2-HMAC-SHA256 hash of the password, and the Digest HA1 values. The new password is read
from standard input (asked twice at a terminal); at least 8 characters.
";

const EMIT_HELP: &str = "\
usage: event-notify emit VERB [key=value ...] [--socket PATH]

VERB is an event key or alias (a direct event), or a transition:
  call state=incoming|calling|ringing|confirmed|ended call_id=ID [remote= local= display_remote=
       display_local= active_user= active_host= calldirection= reason= elsewhere=1]
  register state=registering|ok|failed|off active_user= active_host=
  media state=held|active call_id=ID     refer state=blind|attended call_id=ID
  hook state=off|on   dnd state=on|off   forward state=on|off   syslog state=on|off   boot
Keys are variable names without '$' (see `event-notify variables`). Values may hold any text.
Exit 0 once the daemon accepted it, 1 refused, 2 usage, 3 daemon unreachable.
example: event-notify emit incoming_call call_id=a84b4c76 remote=1002 \"display_remote=Bob & Alice\"
";

const EXPAND_HELP: &str = "\
usage: event-notify expand --config FILE [--board FILE] EVENT [key=value ...]

Prints the request EVENT would send: first line `METHOD URL`, then the headers and the body
(passwords masked). key=value sets a variable (name without '$'); device variables come from
--board and the configured interface. Nothing is sent.
";

const CHECK_HELP: &str = "\
usage: event-notify check --config FILE [--board FILE]

Validates a config: exit 0 (warnings may be printed), or exit 1 with one line per problem
and where it is (event key, column in the template). With --board, the board file too (as
`run --board` reads it: known fields, a valid interface name).
";

const IMPORT_HELP: &str = "\
usage: event-notify import FILE [--from yealink|snom|grandstream] [--merge CONFIG] > config.json

Turns another vendor's provisioning file (Yealink .cfg, Snom settings XML or text, Grandstream
config XML) into a config: each action-URL key becomes one of the twenty events, the vendor's
$variables are written as this guide's names. The config goes to stdout; the report (every key or
variable that does not carry over, with its line and why) to stderr. The format is detected from
the content unless --from is given. --merge CONFIG keeps everything else of CONFIG (delivery,
device, its other events) and replaces only the events the file sets. FILE - reads stdin.
Exit 0 imported (check passes on the output), 1 refused, 2 usage.
";

const STATUS_HELP: &str = "\
usage: event-notify status [--socket PATH]

Prints the running daemon's counters and each event's last delivery result.
";

/// Parsed `--flag value` options and positional words.
struct Args {
    flags: Vec<(String, String)>,
    words: Vec<String>,
    help: bool,
}

fn parse(args: &[String], with_value: &[&str]) -> Result<Args, String> {
    let mut a = Args {
        flags: Vec::new(),
        words: Vec::new(),
        help: false,
    };
    let mut it = args.iter();
    while let Some(x) = it.next() {
        if x == "--help" || x == "-h" {
            a.help = true;
        } else if let Some(name) = x.strip_prefix("--") {
            let (name, value) = match name.split_once('=') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None => {
                    if !with_value.contains(&name) {
                        return Err(format!("unknown option --{name}"));
                    }
                    let v = it.next().ok_or(format!("--{name} needs a value"))?;
                    (name.to_string(), v.clone())
                }
            };
            if !with_value.contains(&name.as_str()) {
                return Err(format!("unknown option --{name}"));
            }
            a.flags.push((name, value));
        } else {
            a.words.push(x.clone());
        }
    }
    Ok(a)
}

impl Args {
    fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn usage(msg: &str, help: &str) -> i32 {
    eprintln!("event-notify: {msg}\n\n{help}");
    EXIT_USAGE
}

/// Runs the command line; returns the exit code.
///
/// Each command is its own function, kept out of line (`#[inline(never)]`): inlined here, their
/// frames (configs, engines and templates built by value) made this one frame ~145 KiB, and the
/// stack probes of that frame left it resident in the daemon's main thread for its whole life.
pub fn main(args: &[String]) -> i32 {
    let Some(cmd) = args.first() else {
        eprint!("{MAIN_HELP}");
        return EXIT_USAGE;
    };
    let rest = &args[1..];
    match cmd.as_str() {
        "run" => run(rest),
        "passwd" => passwd(rest),
        "emit" => emit(rest),
        "expand" => expand(rest),
        "check" => check(rest),
        "status" => status(rest),
        "listen" => crate::listen::cli(rest),
        "import" => import(rest),
        "events" => list(rest, true),
        "variables" => list(rest, false),
        "help" | "--help" | "-h" => {
            print!("{MAIN_HELP}");
            EXIT_OK
        }
        "--version" | "version" => {
            println!("event-notify {}", env!("CARGO_PKG_VERSION"));
            EXIT_OK
        }
        other => usage(&format!("unknown command {other:?}"), MAIN_HELP),
    }
}

fn read_board(path: Option<&str>) -> Result<Board, String> {
    match path {
        None => Ok(Board::default()),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("board {p}: {e}"))?;
            Board::from_json(&text).map_err(|e| format!("board {p}: {e}"))
        }
    }
}

#[inline(never)]
fn run(args: &[String]) -> i32 {
    let a = match parse(
        args,
        &[
            "config",
            "socket",
            "board",
            "baresip",
            "admin",
            "admin-credentials",
            "admin-allow",
            "admin-cert",
            "admin-key",
            "admin-basic",
        ],
    ) {
        Ok(a) => a,
        Err(e) => return usage(&e, RUN_HELP),
    };
    if a.help {
        print!("{RUN_HELP}");
        return EXIT_OK;
    }
    if let Some(w) = a.words.first() {
        return usage(&format!("unexpected argument {w:?}"), RUN_HELP);
    }
    crate::logger::init();
    let board = match read_board(a.flag("board")) {
        Ok(b) => b,
        Err(e) => {
            log::error!("{e}");
            return EXIT_REFUSED;
        }
    };
    let Some(config) = a
        .flag("config")
        .map(str::to_string)
        .or_else(|| board.config.clone())
    else {
        return usage("--config is needed (or a --board that names one)", RUN_HELP);
    };
    let admin = match admin_options(&a, &board) {
        Ok(None) => None,
        Ok(Some(o)) => match crate::admin::Prepared::new(o) {
            Ok(p) => Some(crate::admin::AdminSlot::new(p)),
            Err(e) => {
                log::error!("{e}");
                return EXIT_REFUSED;
            }
        },
        Err(e) => return usage(&e, RUN_HELP),
    };
    let opts = daemon::Options {
        admin,
        config: PathBuf::from(config),
        socket: Some(client::socket_path(
            a.flag("socket"),
            board.socket.as_deref(),
        )),
        board,
        baresip: a.flag("baresip").map(str::to_string),
    };
    match daemon::run(opts) {
        Ok(()) => EXIT_OK,
        Err(e @ (DaemonError::ConfigInvalid { .. } | DaemonError::ConfigRead { .. })) => {
            log::error!("{e}");
            EXIT_REFUSED
        }
        Err(e) => {
            log::error!("{e}");
            EXIT_REFUSED
        }
    }
}

/// The admin server's options: the command line, else the board file's "admin" object.
fn admin_options(a: &Args, board: &Board) -> Result<Option<crate::admin::AdminOptions>, String> {
    let b = board.admin.clone().unwrap_or_default();
    let pick = |flag: &str, dflt: &Option<String>| {
        a.flag(flag).map(str::to_string).or_else(|| dflt.clone())
    };
    let Some(listen) = pick("admin", &b.listen) else {
        if a.flags.iter().any(|(n, _)| n.starts_with("admin-")) {
            return Err("--admin-* options need --admin ADDR:PORT".into());
        }
        return Ok(None);
    };
    let Some(credentials) = pick("admin-credentials", &b.credentials) else {
        return Err("--admin needs --admin-credentials FILE (make it with `event-notify passwd --file FILE`)".into());
    };
    let allow = pick("admin-allow", &b.allow).unwrap_or_default();
    let allow =
        crate::admin::auth::AllowList::parse(&allow).map_err(|e| format!("--admin-allow: {e}"))?;
    let basic_anywhere = match a.flag("admin-basic") {
        None => b.basic_anywhere,
        Some("any") => true,
        Some("loopback") => false,
        Some(o) => return Err(format!("--admin-basic {o:?}: expected loopback or any")),
    };
    Ok(Some(crate::admin::AdminOptions {
        listen,
        credentials: PathBuf::from(credentials),
        allow,
        basic_anywhere,
        cert: pick("admin-cert", &b.cert).map(PathBuf::from),
        key: pick("admin-key", &b.key).map(PathBuf::from),
    }))
}

/// Reads one line of standard input, without echo when it is a terminal. Echo is turned off with
/// `stty` (busybox has it) rather than termios from the library: nix's termios does not link in
/// the static armv7 C library builds.
fn read_secret(prompt: &str) -> Result<String, String> {
    use std::io::{BufRead, IsTerminal};
    use std::process::{Command, Stdio};
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    let stty = |arg: &str| {
        Command::new("stty")
            .arg(arg)
            .stdin(Stdio::inherit())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let quiet = tty && {
        eprint!("{prompt}");
        stty("-echo")
    };
    if tty && !quiet {
        eprint!("(stty not found: the password will show) ");
    }
    let mut line = String::new();
    let r = stdin.lock().read_line(&mut line);
    if quiet {
        stty("echo");
    }
    if tty {
        eprintln!();
    }
    r.map_err(|e| e.to_string())?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

#[inline(never)]
fn passwd(args: &[String]) -> i32 {
    let a = match parse(args, &["file", "user"]) {
        Ok(a) => a,
        Err(e) => return usage(&e, PASSWD_HELP),
    };
    if a.help {
        print!("{PASSWD_HELP}");
        return EXIT_OK;
    }
    let Some(file) = a.flag("file") else {
        return usage("--file PATH is needed", PASSWD_HELP);
    };
    let user = a.flag("user").unwrap_or("admin");
    if user.is_empty()
        || user.len() > crate::admin::auth::CRED_FIELD_CAP
        || user.contains([':', ' ', '"', '\\'])
        || user.chars().any(char::is_control)
    {
        eprintln!("event-notify: the user name must be 1 to 128 characters without ':', space, quote, backslash");
        return EXIT_REFUSED;
    }
    let pw = match read_secret("new admin password: ") {
        Ok(p) => p,
        Err(e) => {
            eprintln!("event-notify: cannot read the password: {e}");
            return EXIT_REFUSED;
        }
    };
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        match read_secret("again: ") {
            Ok(p2) if p2 == pw => {}
            Ok(_) => {
                eprintln!("event-notify: the two passwords differ; nothing written");
                return EXIT_REFUSED;
            }
            Err(e) => {
                eprintln!("event-notify: cannot read the password: {e}");
                return EXIT_REFUSED;
            }
        }
    }
    if pw.chars().count() < 8 || pw.len() > crate::admin::auth::CRED_FIELD_CAP {
        eprintln!("event-notify: the password must be 8 to 128 bytes long; nothing written");
        return EXIT_REFUSED;
    }
    let creds =
        match crate::admin::auth::Credentials::new(user, &pw, crate::admin::auth::PBKDF2_ROUNDS) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("event-notify: {e}");
                return EXIT_REFUSED;
            }
        };
    match creds.store(std::path::Path::new(file)) {
        Ok(()) => {
            println!("{file}: credentials of user {user} written (mode 0600)");
            EXIT_OK
        }
        Err(e) => {
            eprintln!("event-notify: {file}: {e}");
            EXIT_REFUSED
        }
    }
}

/// `key=value` words into fields; the first word is the verb.
fn fields(words: &[String]) -> Result<Vec<(&str, &str)>, String> {
    words
        .iter()
        .map(|w| {
            w.split_once('=')
                .ok_or_else(|| format!("{w:?} is not key=value"))
        })
        .collect()
}

#[inline(never)]
fn emit(args: &[String]) -> i32 {
    let a = match parse(args, &["socket"]) {
        Ok(a) => a,
        Err(e) => return usage(&e, EMIT_HELP),
    };
    if a.help {
        print!("{EMIT_HELP}");
        return EXIT_OK;
    }
    let Some(verb) = a.words.first() else {
        return usage("emit needs a VERB", EMIT_HELP);
    };
    let f = match fields(&a.words[1..]) {
        Ok(f) => f,
        Err(e) => return usage(&e, EMIT_HELP),
    };
    let line = client::request_line(verb, f);
    // Refuse here what the daemon would refuse, with the same words.
    if let Err(e) = wire::parse_request(line.as_bytes()) {
        eprintln!("event-notify: refused: {e}");
        return EXIT_REFUSED;
    }
    let path = client::socket_path(a.flag("socket"), None);
    let reply = Client::connect(&path).and_then(|mut c| c.request(&line));
    match reply {
        Ok(r) if r.starts_with("OK") => {
            println!("{r}");
            EXIT_OK
        }
        Ok(r) => {
            eprintln!("event-notify: {r}");
            EXIT_REFUSED
        }
        Err(e) => {
            eprintln!("event-notify: {e}");
            EXIT_UNREACHABLE
        }
    }
}

#[inline(never)]
fn status(args: &[String]) -> i32 {
    let a = match parse(args, &["socket"]) {
        Ok(a) => a,
        Err(e) => return usage(&e, STATUS_HELP),
    };
    if a.help {
        print!("{STATUS_HELP}");
        return EXIT_OK;
    }
    let path = client::socket_path(a.flag("socket"), None);
    match Client::connect(&path).and_then(|mut c| c.status()) {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            EXIT_OK
        }
        Err(e) => {
            eprintln!("event-notify: {e}");
            EXIT_UNREACHABLE
        }
    }
}

fn load(
    path: Option<&str>,
    help: &str,
) -> Result<(Config, Vec<crate::core::config::Problem>), i32> {
    let Some(path) = path else {
        return Err(usage("--config FILE is needed", help));
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{path}: cannot read: {e}");
            return Err(EXIT_REFUSED);
        }
    };
    crate::daemon::validate_config(&text).map_err(|problems| {
        for p in problems {
            println!("{path}: {p}");
        }
        EXIT_REFUSED
    })
}

#[inline(never)]
fn check(args: &[String]) -> i32 {
    let a = match parse(args, &["config", "board"]) {
        Ok(a) => a,
        Err(e) => return usage(&e, CHECK_HELP),
    };
    if a.help {
        print!("{CHECK_HELP}");
        return EXIT_OK;
    }
    let path = a
        .flag("config")
        .map(str::to_string)
        .or_else(|| a.words.first().cloned());
    // The board file's problem is a line like the config's: `FILE: error: PLACE: what`.
    let board_ok = match a.flag("board") {
        None => true,
        Some(b) => match std::fs::read_to_string(b) {
            Err(e) => {
                eprintln!("{b}: cannot read: {e}");
                false
            }
            Ok(text) => match Board::from_json(&text) {
                Ok(_) => true,
                Err(e) => {
                    println!("{b}: error: {e}");
                    false
                }
            },
        },
    };
    match load(path.as_deref(), CHECK_HELP) {
        Ok((cfg, warnings)) => {
            let path = path.unwrap_or_default();
            for w in &warnings {
                println!("{path}: {w}");
            }
            let on = Event::ALL
                .iter()
                .filter(|e| cfg.event(**e).is_some())
                .count();
            println!("{path}: ok: {on} of {} events on", Event::COUNT);
            if board_ok {
                EXIT_OK
            } else {
                EXIT_REFUSED
            }
        }
        Err(code) => code,
    }
}

#[inline(never)]
fn expand(args: &[String]) -> i32 {
    let a = match parse(args, &["config", "board"]) {
        Ok(a) => a,
        Err(e) => return usage(&e, EXPAND_HELP),
    };
    if a.help {
        print!("{EXPAND_HELP}");
        return EXIT_OK;
    }
    let Some(name) = a.words.first() else {
        return usage("expand needs an EVENT", EXPAND_HELP);
    };
    let f = match fields(&a.words[1..]) {
        Ok(f) => f,
        Err(e) => return usage(&e, EXPAND_HELP),
    };
    let (cfg, _) = match load(a.flag("config"), EXPAND_HELP) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(event) = Event::from_name(name) else {
        eprintln!("event-notify: unknown event {name:?} (see `event-notify events`)");
        return EXIT_REFUSED;
    };
    let Some(ec) = cfg.event(event) else {
        eprintln!("event-notify: {} is off in this config", event.key());
        return EXIT_REFUSED;
    };
    let board = match read_board(a.flag("board")) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("event-notify: {e}");
            return EXIT_REFUSED;
        }
    };
    let mut vars: Vars = daemon::Device::new(&board, &cfg).vars();
    vars.set(Var::Event, event.key());
    vars.set_u64(Var::Timestamp, daemon::now().unix_s);
    // The daemon numbers each notification when it is queued; an example id stands in here.
    let sample_id = crate::core::id::delivery_id(vars.get(Var::Mac), 0, 0);
    vars.set(Var::DeliveryId, &sample_id);
    for (k, v) in f {
        let Some(var) = Var::from_name(k) else {
            eprintln!("event-notify: unknown variable {k:?} (see `event-notify variables`)");
            return EXIT_REFUSED;
        };
        vars.set(var, v);
    }
    let mut url = heapless::String::<URL_CAP>::new();
    if ec.url.expand(&vars, Encoding::Percent, &mut url).is_err() {
        eprintln!(
            "event-notify: the expanded URL is longer than {URL_CAP} bytes: it would not be sent"
        );
        return EXIT_REFUSED;
    }
    println!("{} {url}", ec.method.as_str());
    if let Some(c) = &ec.credentials {
        println!("Authorization: Basic {}:*** (password masked)", c.user);
    }
    let id = vars.get(Var::DeliveryId);
    println!("X-Event-Notify-Id: {id} (numbered when sent)");
    println!("Idempotency-Key: {id}");
    for (name, t) in &ec.headers {
        let mut v = String::new();
        let _ = t.write_to(&vars, Encoding::Percent, &mut v);
        if header_is_secret(name) {
            println!("{name}: *** (masked)");
        } else {
            println!("{name}: {v}");
        }
    }
    if ec.signing_secret.is_some() || cfg.delivery.signing_secret.is_some() {
        println!("X-Event-Notify-Signature: t=<time sent>,v1=<HMAC-SHA256> (secret not shown)");
    }
    if let (Method::Post, Some(body)) = (ec.method, &ec.body) {
        let mut b = heapless::String::<BODY_CAP>::new();
        if body.expand(&vars, ec.body_encoding, &mut b).is_err() {
            eprintln!("event-notify: the expanded body is longer than {BODY_CAP} bytes: it would not be sent");
            return EXIT_REFUSED;
        }
        println!("Content-Type: {}\n\n{b}", ec.content_type);
    }
    EXIT_OK
}

/// A header whose value is a credential by its name (a token header, a cookie, an API key):
/// `expand` masks it like a password. (The rule lives with the config, which also keeps such a
/// value out of its warnings.)
pub use crate::core::config::header_is_secret;

#[inline(never)]
fn import(args: &[String]) -> i32 {
    use crate::import::{self, Vendor};
    let a = match parse(args, &["from", "merge"]) {
        Ok(a) => a,
        Err(e) => return usage(&e, IMPORT_HELP),
    };
    if a.help {
        print!("{IMPORT_HELP}");
        return EXIT_OK;
    }
    let [file] = a.words.as_slice() else {
        return usage("import needs exactly one FILE", IMPORT_HELP);
    };
    let from = match a.flag("from") {
        None => None,
        Some(v) => match Vendor::from_name(v) {
            Some(v) => Some(v),
            None => {
                return usage(
                    &format!("--from {v:?}: expected yealink, snom or grandstream"),
                    IMPORT_HELP,
                )
            }
        },
    };
    let text = match read_import_file(file) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let base = match a.flag("merge") {
        None => None,
        Some(path) => match std::fs::read_to_string(path) {
            Ok(t) => match crate::import::parse_base(&t) {
                Ok(v) => Some(v),
                Err(e) => {
                    eprintln!(
                        "{path}: error: line {} column {}: invalid JSON: {e}",
                        e.line(),
                        e.column()
                    );
                    return EXIT_REFUSED;
                }
            },
            Err(e) => {
                eprintln!("{path}: cannot read: {e}");
                return EXIT_REFUSED;
            }
        },
    };
    match import::import(&text, from, base.as_ref()) {
        Ok(imported) => {
            for f in &imported.report {
                eprintln!("{file}: {f}");
            }
            eprintln!(
                "{file}: imported {} events from a {} file ({} of them off)",
                imported.events, imported.vendor, imported.off
            );
            print!("{}", imported.config_json);
            EXIT_OK
        }
        Err(e) => {
            eprintln!("{file}: error: {e}");
            EXIT_REFUSED
        }
    }
}

/// The file to import (`-`: standard input), at most [`IMPORT_FILE_CAP`] bytes; text that is not
/// UTF-8 is taken with its bad bytes replaced, and said. `Err`: the exit code.
///
/// [`IMPORT_FILE_CAP`]: crate::import::IMPORT_FILE_CAP
fn read_import_file(file: &str) -> Result<String, i32> {
    use crate::import::IMPORT_FILE_CAP;
    use std::io::Read;
    // Read at most one byte more than the cap, so a larger file is refused without reading
    // it all.
    let mut bytes = Vec::new();
    let read = if file == "-" {
        std::io::stdin()
            .take(IMPORT_FILE_CAP as u64 + 1)
            .read_to_end(&mut bytes)
    } else {
        std::fs::File::open(file)
            .and_then(|f| f.take(IMPORT_FILE_CAP as u64 + 1).read_to_end(&mut bytes))
    };
    if let Err(e) = read {
        eprintln!("event-notify: {file}: cannot read: {e}");
        return Err(EXIT_REFUSED);
    }
    Ok(match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            // Provisioning files are ASCII in practice; a stray Latin-1 byte in a comment or a
            // display name should not stop the import. Shown, not hidden.
            eprintln!(
                "{file}: note: not UTF-8 text: the bytes that are not were replaced by U+FFFD"
            );
            String::from_utf8_lossy(e.as_bytes()).into_owned()
        }
    })
}

#[inline(never)]
fn list(args: &[String], events: bool) -> i32 {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "usage: event-notify {}",
            if events { "events" } else { "variables" }
        );
        return EXIT_OK;
    }
    if let Some(a) = args.first() {
        return usage(&format!("unexpected argument {a:?}"), MAIN_HELP);
    }
    if events {
        for e in Event::ALL {
            let aliases: Vec<_> = e.aliases().collect();
            println!("{:<22} {:<22} {}", e.key(), e.label(), aliases.join(" "));
        }
    } else {
        for v in Var::ALL {
            let aliases: Vec<_> = v.aliases().map(|a| format!("${a}")).collect();
            println!(
                "${:<17} {}{}",
                v.name(),
                v.describe(),
                if aliases.is_empty() {
                    String::new()
                } else {
                    format!(" (aliases: {})", aliases.join(" "))
                }
            );
        }
    }
    EXIT_OK
}
