//! The three file formats: each reads its file into the settings it holds (name, value, line),
//! decoded as the vendor stores them. Which of them are action URLs is `map`'s business.

use super::xml::{Reader, Token, XmlError};

/// One setting of a provisioning file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    pub name: String,
    pub value: String,
    pub line: usize,
}

/// A line the reader could not read, reported and skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    pub line: usize,
    pub why: &'static str,
}

#[derive(Default, Debug)]
pub struct Parsed {
    pub settings: Vec<Setting>,
    pub unreadable: Vec<Unreadable>,
}

/// A value with its surrounding quotes taken off (`"..."` or `'...'`), as both text formats
/// allow.
fn unquote(v: &str) -> &str {
    let v = v.trim();
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

/// Yealink `.cfg`: `#!version:1.0.0.1` first, `#` comments, `key = value` lines.
pub fn yealink(text: &str) -> Parsed {
    let mut p = Parsed::default();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim_start_matches('\u{feff}').trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        match l.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => p.settings.push(Setting {
                name: k.trim().to_string(),
                value: unquote(v).to_string(),
                line,
            }),
            _ => p.unreadable.push(Unreadable {
                line,
                why: "not a `key = value` line",
            }),
        }
    }
    p
}

/// Snom's plain settings file: `name: value`, a name may carry a permission flag
/// (`name!:` writable, `name&:` read-only, `name$:`); `#` comments and HTML tag lines.
pub fn snom_text(text: &str) -> Parsed {
    let mut p = Parsed::default();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim_start_matches('\u{feff}').trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with('<') {
            continue;
        }
        match l.split_once(':') {
            Some((k, v)) if !k.trim().is_empty() => {
                let k = k.trim().trim_end_matches(['!', '&', '$']);
                p.settings.push(Setting {
                    name: k.to_string(),
                    value: unquote(v).to_string(),
                    line,
                })
            }
            _ => p.unreadable.push(Unreadable {
                line,
                why: "not a `name: value` line",
            }),
        }
    }
    p
}

/// An element with no child element: its path of element names (outermost first, itself
/// last), its `name` attribute and its parent's, its text and its first line.
struct Leaf {
    path: Vec<String>,
    name_attr: Option<String>,
    parent_name_attr: Option<String>,
    text: String,
    line: usize,
}

fn leaves(text: &str) -> Result<Vec<Leaf>, XmlError> {
    let mut r = Reader::new(text);
    // The open elements, and whether each has a child.
    let mut open: Vec<(Leaf, bool)> = Vec::new();
    let mut out = Vec::new();
    while let Some(t) = r.next_token()? {
        match t {
            Token::Start { attrs, line, .. } => {
                let parent_name_attr = open.last().and_then(|(p, _)| p.name_attr.clone());
                if let Some(parent) = open.last_mut() {
                    parent.1 = true;
                }
                let name_attr = attrs
                    .into_iter()
                    .find(|(k, _)| *k == "name")
                    .map(|(_, v)| v);
                let path = r.path().iter().map(|s| s.to_string()).collect();
                open.push((
                    Leaf {
                        path,
                        name_attr,
                        parent_name_attr,
                        text: String::new(),
                        line,
                    },
                    false,
                ));
            }
            Token::Text { text, .. } => {
                if let Some((cur, _)) = open.last_mut() {
                    cur.text.push_str(&text);
                }
            }
            Token::End { .. } => {
                if let Some((leaf, has_child)) = open.pop() {
                    if !has_child {
                        out.push(leaf);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Snom XML: `<settings><phone-settings><name perm="">value</name>...` (or `<phone-settings>`
/// as the root). Elements elsewhere (function keys, languages, ...) are not settings here.
pub fn snom_xml(text: &str) -> Result<Parsed, XmlError> {
    let mut p = Parsed::default();
    for leaf in leaves(text)? {
        let n = leaf.path.len();
        if n >= 2 && leaf.path[n - 2] == "phone-settings" {
            p.settings.push(Setting {
                name: leaf.path[n - 1].clone(),
                value: leaf.text.trim().to_string(),
                line: leaf.line,
            });
        }
    }
    Ok(p)
}

/// Grandstream XML: `<gs_provision><config version="1"><P8310>value</P8310>` (P-values), or
/// `<config version="2"><item name="a.b">value</item>` and
/// `<item name="a.b"><part name="c">value</part></item>` (named `a.b.c`).
pub fn grandstream(text: &str) -> Result<Parsed, XmlError> {
    let mut p = Parsed::default();
    for leaf in leaves(text)? {
        let Some(at) = leaf.path.iter().position(|e| e == "config") else {
            continue;
        };
        let name = match &leaf.path[at + 1..] {
            [one] if one == "item" => leaf.name_attr,
            [one] => Some(one.clone()),
            [item, part] if item == "item" && part == "part" => {
                match (leaf.parent_name_attr, leaf.name_attr) {
                    (Some(i), Some(p)) => Some(format!("{i}.{p}")),
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some(name) = name {
            p.settings.push(Setting {
                name,
                value: leaf.text.trim().to_string(),
                line: leaf.line,
            });
        }
    }
    Ok(p)
}
