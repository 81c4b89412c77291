//! `event-notify import`: another vendor's provisioning file (Yealink `.cfg`, Snom settings
//! XML or text, Grandstream config XML) into a config of ours.
//!
//! [`import`] is the whole job, for the command line and for the admin server's import route:
//! it detects the format (or takes the one given), reads the settings, maps each action-URL
//! key to one of the twenty events ([`map`]), rewrites the vendor's `$variables` to the guide's
//! names, checks each URL with the rules of `check`, and builds the config JSON — alone, or
//! merged into an existing config whose other settings it keeps. Everything that does not
//! carry over is a [`Finding`] (key, line, why); nothing is dropped silently. A finding never
//! holds a URL or any other value of the file, so no credential leaks into a report.

pub mod map;
pub mod vendor;
pub mod xml;

use crate::core::config::{Config, Problem};
use crate::core::event::Event;
use crate::core::template::Template;
use map::{Target, VarTo};
use serde_json::{Map, Value};
use std::fmt;
use vendor::{Parsed, Setting};

/// Largest provisioning file accepted, in bytes. A full Yealink or Grandstream file with every
/// setting is well under 200 KiB.
pub const IMPORT_FILE_CAP: usize = 256 * 1024;
/// Most findings kept in one report; beyond it one last finding counts the rest.
pub const MAX_FINDINGS: usize = 200;

/// The vendor whose file it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vendor {
    Yealink,
    Snom,
    Grandstream,
}

impl Vendor {
    pub const fn name(self) -> &'static str {
        match self {
            Vendor::Yealink => "yealink",
            Vendor::Snom => "snom",
            Vendor::Grandstream => "grandstream",
        }
    }

    /// `yealink`, `snom` or `grandstream`, in any case.
    pub fn from_name(s: &str) -> Option<Vendor> {
        [Vendor::Yealink, Vendor::Snom, Vendor::Grandstream]
            .into_iter()
            .find(|v| v.name().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How much a finding matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// The key was not imported.
    Skipped,
    /// Imported, with something that does not carry over (kept as literal text).
    Warning,
    /// Imported as is; worth knowing.
    Note,
}

impl Level {
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Skipped => "skipped",
            Level::Warning => "warning",
            Level::Note => "note",
        }
    }
}

/// One line of the report: which key of the vendor file (and line), and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// 1-based line in the vendor file; 0 for the whole file.
    pub line: usize,
    /// The vendor's key (`action_url.hold`, `action_incoming_url`, `P8310`), or empty.
    pub key: String,
    pub level: Level,
    pub message: String,
}

impl Finding {
    /// As the admin API's import route reports it:
    /// `{"line": 12, "key": "action_url.mute", "level": "skipped", "message": "..."}`
    /// (`line` null for the whole file).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            "line".into(),
            if self.line > 0 {
                Value::from(self.line)
            } else {
                Value::Null
            },
        );
        m.insert("key".into(), Value::from(self.key.as_str()));
        m.insert("level".into(), Value::from(self.level.as_str()));
        m.insert("message".into(), Value::from(self.message.as_str()));
        Value::Object(m)
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: ", self.line)?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        write!(f, "{}: {}", self.level.as_str(), self.message)
    }
}

/// A successful import.
#[derive(Clone, Debug)]
pub struct Imported {
    pub vendor: Vendor,
    /// The config (pretty JSON); `check` passes on it.
    pub config_json: String,
    /// How many events the file sets, on or off.
    pub events: usize,
    /// Of those, how many it turns off (an empty URL).
    pub off: usize,
    pub report: Vec<Finding>,
}

/// Why nothing was imported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportError {
    TooLarge,
    /// Neither given nor recognisable.
    UnknownFormat,
    Xml(xml::XmlError),
    /// The file holds no action-URL setting of this vendor.
    NothingFound(Vendor),
    /// The config given to merge into is not valid.
    Base(Vec<Problem>),
    /// The result failed validation (a bug if it happens; reported, never written).
    Invalid(Vec<Problem>),
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportError::TooLarge => write!(f, "the file is larger than {IMPORT_FILE_CAP} bytes"),
            ImportError::UnknownFormat => f.write_str(
                "not a Yealink .cfg, Snom settings or Grandstream config file (give --from yealink|snom|grandstream)",
            ),
            ImportError::Xml(e) => write!(f, "not well-formed XML: {e}"),
            ImportError::NothingFound(v) => write!(f, "no {v} action URL setting in the file"),
            ImportError::Base(p) => {
                f.write_str("the config to merge into is not valid:")?;
                p.iter().try_for_each(|p| write!(f, "\n  {p}"))
            }
            ImportError::Invalid(p) => {
                f.write_str("the imported config did not pass the check:")?;
                p.iter().try_for_each(|p| write!(f, "\n  {p}"))
            }
        }
    }
}

impl std::error::Error for ImportError {}

/// The name of the root element, if `text` starts like an XML document.
fn xml_root(text: &str) -> Option<&str> {
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if !t.starts_with('<') {
        return None;
    }
    let mut r = xml::Reader::new(t);
    while let Ok(Some(tok)) = r.next_token() {
        if let xml::Token::Start { name, .. } = tok {
            return Some(name);
        }
    }
    None
}

/// The format of `text`, from its content.
pub fn detect(text: &str) -> Option<Vendor> {
    match xml_root(text) {
        Some("settings" | "phone-settings") => return Some(Vendor::Snom),
        Some("gs_provision" | "config") => return Some(Vendor::Grandstream),
        // Snom's text form is often wrapped in <html><pre> so a browser shows it.
        Some("html") | None => {}
        Some(_) => return None,
    }
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if t.starts_with("#!version:") {
        return Some(Vendor::Yealink);
    }
    let lines = t.lines().map(str::trim);
    for l in lines.filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('<')) {
        if l.starts_with("action_url.") {
            return Some(Vendor::Yealink);
        }
        if let Some((k, _)) = l.split_once(':') {
            let k = k.trim().trim_end_matches(['!', '&', '$']);
            if k.starts_with("action_") && !k.contains('=') && !k.contains(' ') {
                return Some(Vendor::Snom);
            }
        }
    }
    None
}

/// Parses the config that `--merge` names (JSON), for [`import`]'s `base`: the JSON stays in
/// this module.
pub fn parse_base(text: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str(text)
}

/// Imports `text` (the vendor file as is). `from` forces the format; `base` is a config to
/// merge into: its delivery, device and other events are kept, the imported events replace
/// its entries for the same events.
pub fn import(
    text: &str,
    from: Option<Vendor>,
    base: Option<&Value>,
) -> Result<Imported, ImportError> {
    if text.len() > IMPORT_FILE_CAP {
        return Err(ImportError::TooLarge);
    }
    let vendor = match from {
        Some(v) => v,
        None => detect(text).ok_or(ImportError::UnknownFormat)?,
    };
    let parsed = match vendor {
        Vendor::Yealink => vendor::yealink(text),
        Vendor::Snom if !matches!(xml_root(text), None | Some("html")) => {
            vendor::snom_xml(text).map_err(ImportError::Xml)?
        }
        Vendor::Snom => vendor::snom_text(text),
        Vendor::Grandstream => vendor::grandstream(text).map_err(ImportError::Xml)?,
    };
    let mut r = Report::default();
    let set = collect(vendor, parsed, &mut r);
    if set.found == 0 {
        return Err(ImportError::NothingFound(vendor));
    }
    let mut events = Map::new();
    let (mut count, mut off) = (0, 0);
    for e in Event::ALL {
        if let Some((url, _)) = &set.urls[e.index()] {
            count += 1;
            off += usize::from(url.is_empty());
            events.insert(e.key().to_string(), Value::String(url.clone()));
        }
    }
    let root = match base {
        None => {
            let mut root = Map::new();
            root.insert("events".into(), Value::Object(events));
            Value::Object(root)
        }
        Some(base) => merge(base, &set, &mut r)?,
    };
    let config_json = serde_json::to_string_pretty(&root).unwrap_or_default() + "\n";
    match Config::from_json(&config_json) {
        Ok((_, warnings)) => {
            for w in warnings {
                // Warnings about the imported events are already in the report (unknown
                // variables); others belong to the merged config and are passed on.
                if !w.message.contains("unknown variable") {
                    r.push(0, "", Level::Note, format!("the result: {w}"));
                }
            }
        }
        Err(problems) => return Err(ImportError::Invalid(problems)),
    }
    Ok(Imported {
        vendor,
        config_json,
        events: count,
        off,
        report: r.finish(),
    })
}

#[derive(Default)]
struct Report {
    findings: Vec<Finding>,
    more: usize,
}

impl Report {
    fn push(&mut self, line: usize, key: &str, level: Level, message: impl Into<String>) {
        if self.findings.len() >= MAX_FINDINGS {
            self.more += 1;
            return;
        }
        self.findings.push(Finding {
            line,
            key: key.to_string(),
            level,
            message: message.into(),
        });
    }

    fn finish(mut self) -> Vec<Finding> {
        if self.more > 0 {
            self.findings.push(Finding {
                line: 0,
                key: String::new(),
                level: Level::Note,
                message: format!("{} more findings not shown", self.more),
            });
        }
        self.findings
    }
}

/// What the file sets: per event, the rewritten URL ("" = off) and the vendor line.
struct Imports {
    urls: [Option<(String, usize)>; Event::COUNT],
    /// Action-URL settings of this vendor seen (imported or not).
    found: usize,
}

/// A setting's place in the vendor's scheme.
enum Kind {
    Action(Target),
    /// Looks like an action URL of this vendor, but its meaning is not published.
    Unknown(&'static str),
    /// Another kind of setting (account, network, ...).
    Other,
}

fn classify(vendor: Vendor, s: &Setting) -> Kind {
    // Both vendors write their keys in lower case; a hand-edited file may not.
    let name = s.name.to_ascii_lowercase();
    match vendor {
        Vendor::Yealink => match name.strip_prefix("action_url.") {
            Some(k) => match map::YEALINK_KEYS.iter().find(|(n, _)| *n == k) {
                Some((_, t)) => Kind::Action(*t),
                None => Kind::Unknown("not a Yealink action URL key in the published list"),
            },
            None => Kind::Other,
        },
        Vendor::Snom => match map::SNOM_KEYS.iter().find(|(n, _)| *n == name) {
            Some((_, t)) => Kind::Action(*t),
            None if name.starts_with("action_") && name.ends_with("_url") => {
                Kind::Unknown("not a Snom action URL setting in the published list")
            }
            None => Kind::Other,
        },
        Vendor::Grandstream => {
            let pnum = s
                .name
                .strip_prefix(['P', 'p'])
                .and_then(|n| n.parse::<u32>().ok());
            if let Some(t) = pnum.and_then(|n| {
                map::GRANDSTREAM_PVALUES
                    .iter()
                    .find(|(p, _)| *p == n)
                    .map(|(_, t)| *t)
            }) {
                return Kind::Action(t);
            }
            let lower = s.name.to_ascii_lowercase();
            let named_like_one = lower.contains("action") && lower.contains("url");
            if named_like_one || looks_like_action_url(&s.value) {
                Kind::Unknown(if pnum.is_some() {
                    "a URL with variables in a P-value that Grandstream's published Action URL table does not list: not guessed"
                } else {
                    "a setting name whose meaning is not published (give the P-value form, <config version=\"1\">): not guessed"
                })
            } else {
                Kind::Other
            }
        }
    }
}

/// A value that is a URL carrying `$variables`: what an action URL looks like.
fn looks_like_action_url(v: &str) -> bool {
    v.contains('$') && (v.contains("://") || v.contains('/') || v.contains('?'))
}

fn collect(vendor: Vendor, parsed: Parsed, r: &mut Report) -> Imports {
    let mut set = Imports {
        urls: [const { None }; Event::COUNT],
        found: 0,
    };
    for u in &parsed.unreadable {
        r.push(u.line, "", Level::Skipped, u.why);
    }
    let mut other = 0usize;
    for s in &parsed.settings {
        let target = match classify(vendor, s) {
            Kind::Other => {
                other += 1;
                continue;
            }
            Kind::Unknown(why) => {
                set.found += 1;
                r.push(s.line, &s.name, Level::Skipped, why);
                continue;
            }
            Kind::Action(t) => t,
        };
        set.found += 1;
        let event = match target {
            Target::None(why) => {
                if !s.value.trim().is_empty() {
                    r.push(s.line, &s.name, Level::Skipped, why);
                }
                continue;
            }
            Target::Event(e) => e,
        };
        let url = if s.value.trim().is_empty() {
            String::new()
        } else {
            let url = rewrite(vendor, &s.value, &s.name, s.line, r);
            if let Err(e) = Template::parse_url(&url) {
                r.push(
                    s.line,
                    &s.name,
                    Level::Skipped,
                    format!("{}: the URL is refused: {e}", event.key()),
                );
                continue;
            }
            url
        };
        if let Some((_, first)) = &set.urls[event.index()] {
            r.push(
                s.line,
                &s.name,
                Level::Note,
                format!(
                    "{} was set on line {first} too; this later one is used",
                    event.key()
                ),
            );
        }
        set.urls[event.index()] = Some((url, s.line));
    }
    if other > 0 {
        r.push(
            0,
            "",
            Level::Note,
            format!("{other} other settings of the file (accounts, network, ...) are not event URLs and were left out"),
        );
    }
    set
}

/// The vendor URL with its `$variables` written as the guide's names. A variable with no
/// equivalent (and a lone `$`) is kept as literal text (`$$`), and reported.
fn rewrite(vendor: Vendor, value: &str, key: &str, line: usize, r: &mut Report) -> String {
    let table = match vendor {
        Vendor::Yealink => map::YEALINK_VARS,
        Vendor::Snom => map::SNOM_VARS,
        Vendor::Grandstream => map::GRANDSTREAM_VARS,
    };
    let v = value.trim();
    let mut out = String::with_capacity(v.len() + 16);
    let mut noted: Vec<&str> = Vec::new();
    let mut rest = v;
    while let Some(d) = rest.find('$') {
        out.push_str(&rest[..d]);
        let after = &rest[d + 1..];
        // Yealink and Snom read the whole word after `$` as the name (`$local_uri` is not
        // `$local` followed by `_uri`); Grandstream's pages use the guide's rule, the longest
        // known name.
        let found = match vendor {
            Vendor::Grandstream => map::longest_var(table, after),
            Vendor::Yealink | Vendor::Snom => {
                let dash = vendor == Vendor::Snom;
                let len = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || (dash && c == '-')))
                    .unwrap_or(after.len());
                map::exact_var(table, &after[..len])
            }
        };
        match found {
            Some((name, VarTo::Var(var, note))) => {
                let next = after[name.len()..].chars().next();
                if next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                    out.push_str(&format!("${{{}}}", var.name()));
                } else {
                    out.push('$');
                    out.push_str(var.name());
                }
                if name != var.name() && !noted.contains(&name) {
                    noted.push(name);
                    r.push(
                        line,
                        key,
                        Level::Note,
                        format!("${name} written as ${}", var.name()),
                    );
                }
                if let Some(n) = note {
                    if !noted.contains(&var.name()) {
                        noted.push(var.name());
                        r.push(line, key, Level::Note, format!("${}: {n}", var.name()));
                    }
                }
                rest = &after[name.len()..];
            }
            Some((name, VarTo::None(why))) => {
                out.push_str("$$");
                out.push_str(name);
                if !noted.contains(&name) {
                    noted.push(name);
                    r.push(
                        line,
                        key,
                        Level::Warning,
                        format!("${name}: {why}; sent as the literal text ${name}"),
                    );
                }
                rest = &after[name.len()..];
            }
            None => {
                let word_len = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                    .unwrap_or(after.len());
                let word = &after[..word_len];
                out.push_str("$$");
                out.push_str(word);
                if !word.is_empty() && !noted.contains(&word) {
                    noted.push(word);
                    r.push(
                        line,
                        key,
                        Level::Warning,
                        format!("${word}: not a {vendor} variable in the published list; sent as the literal text ${word}"),
                    );
                }
                rest = &after[word_len..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `base` with the imported events put in: every entry of `base.events` for an imported
/// event (under its key or any alias) is replaced; an event the file turns off is removed.
fn merge(base: &Value, set: &Imports, r: &mut Report) -> Result<Value, ImportError> {
    let text = serde_json::to_string(base).unwrap_or_default();
    if let Err(problems) = Config::from_json(&text) {
        return Err(ImportError::Base(problems));
    }
    let mut root = match base {
        Value::Object(o) => o.clone(),
        _ => return Err(ImportError::Base(Vec::new())),
    };
    // In place, so the file keeps its order (events where they were).
    let slot = root
        .entry("events")
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    let Value::Object(events) = slot else {
        return Err(ImportError::Base(Vec::new()));
    };
    for e in Event::ALL {
        let Some((url, line)) = &set.urls[e.index()] else {
            continue;
        };
        let had: Vec<String> = events
            .keys()
            .filter(|k| Event::from_name(k) == Some(e))
            .cloned()
            .collect();
        for k in &had {
            events.remove(k);
        }
        if url.is_empty() {
            if !had.is_empty() {
                r.push(
                    *line,
                    "",
                    Level::Note,
                    format!("{}: turned off (empty in the file)", e.key()),
                );
            }
            continue;
        }
        if !had.is_empty() {
            r.push(
                *line,
                "",
                Level::Note,
                format!("{}: replaces the entry of the config merged into", e.key()),
            );
        }
        events.insert(e.key().to_string(), Value::String(url.clone()));
    }
    Ok(Value::Object(root))
}

#[cfg(test)]
mod tests;
