//! The one table, and the same as JSON.

use serde_json::{json, Value};
use std::fmt::Write;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Us,
    Ns,
    PerS,
    KiB,
    Bytes,
    Count,
    Ratio,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Us => "us",
            Unit::Ns => "ns",
            Unit::PerS => "per_s",
            Unit::KiB => "KiB",
            Unit::Bytes => "bytes",
            Unit::Count => "count",
            Unit::Ratio => "ratio",
        }
    }

    fn show(self, x: f64) -> String {
        if !x.is_finite() {
            return "n/a".into();
        }
        match self {
            Unit::Us if x >= 10_000.0 => format!("{:.1} ms", x / 1e3),
            Unit::Us if x >= 1_000.0 => format!("{:.2} ms", x / 1e3),
            Unit::Us => format!("{x:.0} µs"),
            Unit::Ns => format!("{x:.0} ns"),
            Unit::PerS => format!("{}/s", thousands(x.round() as u64)),
            Unit::KiB if x >= 10_240.0 => format!("{:.1} MiB", x / 1024.0),
            Unit::KiB => format!("{} KiB", thousands(x.round() as u64)),
            Unit::Bytes => format!("{} KiB", thousands((x / 1024.0).round() as u64)),
            Unit::Count if x.fract() != 0.0 => format!("{x:.2}"),
            Unit::Count => thousands(x as u64),
            Unit::Ratio => format!("{x:.2}"),
        }
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Which way is better, for the ratio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Lower,
    Higher,
    None,
}

/// One figure: the values of each run, or why there is none.
#[derive(Clone, Debug)]
pub enum Val {
    Runs(Vec<f64>),
    Na(String),
}

pub fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

impl Val {
    pub fn median(&self) -> Option<f64> {
        match self {
            Val::Runs(v) => Some(median(v)).filter(|x| !x.is_nan()),
            Val::Na(_) => None,
        }
    }

    fn json(&self) -> Value {
        match self {
            Val::Runs(v) => json!({"median": self.median(), "runs": v}),
            Val::Na(why) => json!({"na": why}),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Cmp {
    Lt,
    Ge,
    Eq,
}

#[derive(Clone, Debug)]
pub struct Goal {
    cmp: Cmp,
    value: f64,
    text: String,
}

impl Goal {
    pub fn lt(value: f64, text: &str) -> Goal {
        Goal {
            cmp: Cmp::Lt,
            value,
            text: text.into(),
        }
    }
    pub fn ge(value: f64, text: &str) -> Goal {
        Goal {
            cmp: Cmp::Ge,
            value,
            text: text.into(),
        }
    }
    pub fn eq(value: f64, text: &str) -> Goal {
        Goal {
            cmp: Cmp::Eq,
            value,
            text: text.into(),
        }
    }
    fn met(&self, x: f64) -> bool {
        match self.cmp {
            Cmp::Lt => x < self.value,
            Cmp::Ge => x >= self.value,
            Cmp::Eq => x == self.value,
        }
    }
}

pub struct Row {
    id: String,
    figure: String,
    unit: Unit,
    better: Better,
    ours: Val,
    peers: Vec<(String, Val)>,
    goal: Option<Goal>,
}

impl Row {
    pub fn new(id: &str, figure: &str, unit: Unit, better: Better, ours: Val) -> Row {
        Row {
            id: id.into(),
            figure: figure.into(),
            unit,
            better,
            ours,
            peers: Vec::new(),
            goal: None,
        }
    }

    pub fn peer(mut self, name: &str, v: Val) -> Row {
        self.peers.push((name.into(), v));
        self
    }

    pub fn goal(mut self, g: Goal) -> Row {
        self.goal = Some(g);
        self
    }

    /// How many times better event-notify is than the peer (> 1: better).
    fn ratio(&self, peer: &Val) -> Option<f64> {
        let (o, p) = (self.ours.median()?, peer.median()?);
        let r = match self.better {
            Better::Lower => p / o,
            Better::Higher => o / p,
            Better::None => return None,
        };
        r.is_finite().then_some(r)
    }

    fn met(&self) -> Option<bool> {
        Some(self.goal.as_ref()?.met(self.ours.median()?))
    }
}

enum Item {
    Section(String),
    Row(Row),
}

pub struct Report {
    smoke: bool,
    runs: usize,
    took: Duration,
    items: Vec<Item>,
    notes: Vec<String>,
}

fn show(unit: Unit, v: &Val) -> String {
    match v {
        Val::Runs(_) => v.median().map_or("n/a".into(), |x| unit.show(x)),
        Val::Na(_) => "n/a".into(),
    }
}

fn pad(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n >= w {
        s.to_string()
    } else {
        format!("{s}{}", " ".repeat(w - n))
    }
}

fn rpad(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n >= w {
        s.to_string()
    } else {
        format!("{}{s}", " ".repeat(w - n))
    }
}

impl Report {
    pub fn new(smoke: bool, runs: usize, took: Duration) -> Report {
        Report {
            smoke,
            runs,
            took,
            items: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn section(&mut self, title: &str) {
        self.items.push(Item::Section(title.into()));
    }

    pub fn row(&mut self, r: Row) {
        self.items.push(Item::Row(r));
    }

    pub fn note(&mut self, n: &str) {
        self.notes.push(n.into());
    }

    pub fn table(&self) -> String {
        let mut t = String::new();
        let (wf, wo, wp, wv, wr) = (COL_FIGURE, COL_OURS, COL_PEER, COL_PEER_VAL, COL_RATIO);
        let _ = writeln!(
            t,
            "\nevent-notify bench{} — {} run(s), medians; ×: how many times better event-notify is than the peer",
            if self.smoke { " (SMOKE: tiny counts, figures meaningless)" } else { "" },
            self.runs
        );
        let _ = writeln!(
            t,
            "{}{}  {}{}{}  goal",
            pad("figure", wf),
            rpad("event-notify", wo),
            pad("  peer", wp),
            rpad("peer", wv),
            rpad("×", wr)
        );
        let _ = writeln!(t, "{}", "─".repeat(wf + wo + wp + wv + wr + 18));
        let mut why: Vec<String> = Vec::new();
        for it in &self.items {
            match it {
                Item::Section(s) => {
                    let _ = writeln!(t, "{s}");
                }
                Item::Row(r) => row_lines(&mut t, r, &mut why),
            }
        }
        let lines = na_lines(why);
        if !lines.is_empty() {
            let _ = writeln!(t, "\nn/a:");
            for w in lines {
                let _ = writeln!(t, "  {w}");
            }
        }
        if !self.notes.is_empty() {
            let _ = writeln!(t, "\nnotes:");
            for n in &self.notes {
                let _ = writeln!(t, "  {n}");
            }
        }
        let _ = writeln!(t, "\ntook {:.0} s", self.took.as_secs_f64());
        t
    }

    pub fn json(&self) -> String {
        let mut rows = Vec::new();
        let mut section = String::new();
        for it in &self.items {
            match it {
                Item::Section(s) => section = s.clone(),
                Item::Row(r) => {
                    let peers: Vec<Value> = r
                        .peers
                        .iter()
                        .map(|(name, v)| {
                            json!({"name": name, "value": v.json(), "ratio": r.ratio(v)})
                        })
                        .collect();
                    rows.push(json!({
                        "id": r.id,
                        "section": section,
                        "figure": r.figure.trim(),
                        "unit": r.unit.name(),
                        "better": match r.better { Better::Lower => "lower", Better::Higher => "higher", Better::None => "none" },
                        "value": r.ours.json(),
                        "peers": peers,
                        "goal": r.goal.as_ref().map(|g| json!({"text": g.text, "value": g.value, "met": r.met()})),
                    }));
                }
            }
        }
        let host = json!({
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
            "cpu": std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default().lines()
                .find_map(|l| l.strip_prefix("model name").and_then(|v| v.split_once(':')).map(|v| v.1.trim().to_string())),
        });
        let v = json!({
            "bench": "event-notify",
            "mode": if self.smoke { "smoke" } else { "full" },
            "runs": self.runs,
            "seconds": self.took.as_secs_f64(),
            "generated_unix": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            "host": host,
            "rows": rows,
            "notes": self.notes,
        });
        serde_json::to_string_pretty(&v).unwrap_or_default()
    }
}

/// Column widths of the table: figure, ours, peer name, peer value, ratio.
const COL_FIGURE: usize = 56;
const COL_OURS: usize = 12;
const COL_PEER: usize = 22;
const COL_PEER_VAL: usize = 12;
const COL_RATIO: usize = 9;

/// One row of the table (a line per peer after the first); why a figure is n/a goes to `why`.
fn row_lines(t: &mut String, r: &Row, why: &mut Vec<String>) {
    let (wf, wo, wp, wv, wr) = (COL_FIGURE, COL_OURS, COL_PEER, COL_PEER_VAL, COL_RATIO);
    if let Val::Na(w) = &r.ours {
        why.push(format!("{}: {w}", r.id));
    }
    let goal = match (&r.goal, r.met()) {
        (Some(g), Some(true)) => format!("{} ✓", g.text),
        (Some(g), Some(false)) => format!("{} ✗ MISSED", g.text),
        (Some(g), None) => format!("{} ?", g.text),
        (None, _) => String::new(),
    };
    let first = r.peers.first();
    let mut peer_cols = |p: Option<&(String, Val)>| match p {
        Some((name, v)) => {
            if let Val::Na(w) = v {
                why.push(format!("{} ({name}): {w}", r.id));
            }
            format!(
                "  {}{}{}",
                pad(name, wp - 2),
                rpad(&show(r.unit, v), wv),
                rpad(&r.ratio(v).map_or("—".into(), |x| format!("{x:.1}×")), wr)
            )
        }
        None => format!("  {}", " ".repeat(wp + wv + wr - 2)),
    };
    let _ = writeln!(
        t,
        "  {}{}{}  {goal}",
        pad(&r.figure, wf - 2),
        rpad(&show(r.unit, &r.ours), wo),
        peer_cols(first)
    );
    for p in r.peers.iter().skip(1) {
        let _ = writeln!(t, "{}{}", " ".repeat(wf + wo), peer_cols(Some(p)));
    }
}

/// The n/a reasons, one line per reason and who (the first figure that has it).
fn na_lines(why: Vec<String>) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut lines = Vec::new();
    for w in why {
        let reason = w.split_once(": ").map_or(w.clone(), |x| x.1.to_string());
        let who = w.split_once(": ").map_or("", |x| x.0);
        let who = who
            .split(" (")
            .nth(1)
            .map_or(who.to_string(), |p| p.trim_end_matches(')').to_string());
        let k = format!("{who}\u{0}{reason}");
        if !seen.contains(&k) {
            seen.push(k);
            lines.push(format!("{who}: {reason}"));
        }
    }
    lines
}
