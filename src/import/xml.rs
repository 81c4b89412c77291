//! A small pull reader for the XML of provisioning files (Snom settings, Grandstream config).
//!
//! Hand-written rather than a crate: the importers need elements, attributes, text, CDATA and
//! the five predefined entities plus character references, nothing else, and this costs a few
//! KiB of flash where a general parser costs tens. What it deliberately does not do: DTDs
//! (`<!DOCTYPE ...>` is skipped whole, so no entity a file declares is ever expanded — no
//! "billion laughs"), namespaces (a prefix stays part of the name), encodings other than
//! UTF-8 (the caller hands in `&str`). Depth is bounded by [`MAX_XML_DEPTH`]; the input by the
//! caller's file cap. Every malformed input is an [`XmlError`] with its line, never a panic.

use std::fmt;

/// Deepest element nesting accepted. Provisioning files nest three or four levels.
pub const MAX_XML_DEPTH: usize = 32;

/// What went wrong, and on which line (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XmlError {
    pub line: usize,
    pub message: &'static str,
}

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// One piece of the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Token<'a> {
    /// `<name a="v">` (or `<name/>`, which is followed by its `End`).
    Start {
        name: &'a str,
        attrs: Vec<(&'a str, String)>,
        line: usize,
    },
    End {
        name: &'a str,
        line: usize,
    },
    /// Character data, entities decoded (CDATA as is).
    Text {
        text: String,
        line: usize,
    },
}

pub struct Reader<'a> {
    src: &'a str,
    pos: usize,
    line: usize,
    stack: Vec<&'a str>,
    /// An `<x/>` owes its `End`.
    pending_end: Option<(&'a str, usize)>,
    seen_root: bool,
}

impl<'a> Reader<'a> {
    pub fn new(src: &'a str) -> Reader<'a> {
        let src = src.strip_prefix('\u{feff}').unwrap_or(src);
        Reader {
            src,
            pos: 0,
            line: 1,
            stack: Vec::new(),
            pending_end: None,
            seen_root: false,
        }
    }

    /// The names of the open elements, outermost first.
    pub fn path(&self) -> &[&'a str] {
        &self.stack
    }

    fn err(&self, message: &'static str) -> XmlError {
        XmlError {
            line: self.line,
            message,
        }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    /// Moves `n` bytes on (always to a char boundary: callers pass lengths of found ASCII
    /// delimiters or of whole prefixes), counting newlines.
    fn advance(&mut self, n: usize) {
        let end = (self.pos + n).min(self.src.len());
        self.line += self.src[self.pos..end]
            .bytes()
            .filter(|&b| b == b'\n')
            .count();
        self.pos = end;
    }

    /// Skips past `delim`, or fails with `message` at the end of the input.
    fn skip_past(&mut self, delim: &str, message: &'static str) -> Result<&'a str, XmlError> {
        match self.rest().find(delim) {
            Some(i) => {
                let inner = &self.rest()[..i];
                self.advance(i + delim.len());
                Ok(inner)
            }
            None => Err(self.err(message)),
        }
    }

    /// The next token, `Ok(None)` at a well-formed end.
    pub fn next_token(&mut self) -> Result<Option<Token<'a>>, XmlError> {
        if let Some((name, line)) = self.pending_end.take() {
            self.stack.pop();
            return Ok(Some(Token::End { name, line }));
        }
        loop {
            if self.pos >= self.src.len() {
                if !self.stack.is_empty() {
                    return Err(self.err("the file ends inside an element"));
                }
                if !self.seen_root {
                    return Err(self.err("no element in the file"));
                }
                return Ok(None);
            }
            let rest = self.rest();
            if !rest.starts_with('<') {
                let line = self.line;
                let end = rest.find('<').unwrap_or(rest.len());
                let raw = &rest[..end];
                self.advance(end);
                if self.stack.is_empty() {
                    if raw.trim().is_empty() {
                        continue;
                    }
                    return Err(XmlError {
                        line,
                        message: "text outside the root element",
                    });
                }
                let text = decode(raw).map_err(|message| XmlError { line, message })?;
                return Ok(Some(Token::Text { text, line }));
            }
            if rest.starts_with("<!--") {
                self.advance(4);
                self.skip_past("-->", "a comment without its closing -->")?;
                continue;
            }
            if rest.starts_with("<![CDATA[") {
                let line = self.line;
                if self.stack.is_empty() {
                    return Err(self.err("CDATA outside the root element"));
                }
                self.advance(9);
                let inner = self.skip_past("]]>", "CDATA without its closing ]]>")?;
                return Ok(Some(Token::Text {
                    text: inner.to_string(),
                    line,
                }));
            }
            if rest.starts_with("<?") {
                self.advance(2);
                self.skip_past("?>", "a processing instruction without its closing ?>")?;
                continue;
            }
            if rest.starts_with("<!") {
                self.skip_declaration()?;
                continue;
            }
            if rest.starts_with("</") {
                let line = self.line;
                self.advance(2);
                let inner = self.skip_past(">", "an end tag without its closing >")?;
                let name = inner.trim_end();
                let Some(open) = self.stack.pop() else {
                    return Err(XmlError {
                        line,
                        message: "an end tag with no element open",
                    });
                };
                if open != name {
                    return Err(XmlError {
                        line,
                        message: "an end tag that does not match the open element",
                    });
                }
                return Ok(Some(Token::End { name, line }));
            }
            return self.start_tag().map(Some);
        }
    }

    /// `<!DOCTYPE ...>` and the like, with an internal subset in `[...]`: skipped whole.
    fn skip_declaration(&mut self) -> Result<(), XmlError> {
        let mut in_subset = false;
        let mut quote: Option<u8> = None;
        for (i, b) in self.rest().bytes().enumerate() {
            match (quote, b) {
                (Some(q), b) if b == q => quote = None,
                (Some(_), _) => {}
                (None, b'"' | b'\'') => quote = Some(b),
                (None, b'[') => in_subset = true,
                (None, b']') => in_subset = false,
                (None, b'>') if !in_subset => {
                    self.advance(i + 1);
                    return Ok(());
                }
                _ => {}
            }
        }
        Err(self.err("a <! declaration without its closing >"))
    }

    fn start_tag(&mut self) -> Result<Token<'a>, XmlError> {
        let line = self.line;
        self.advance(1);
        let rest = self.rest();
        let name_len = rest
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .unwrap_or(rest.len());
        let name = &rest[..name_len];
        if name.is_empty() || !name.chars().all(is_name_char) {
            return Err(self.err("a tag without a valid element name"));
        }
        if self.stack.is_empty() && self.seen_root {
            return Err(self.err("a second root element"));
        }
        self.advance(name_len);
        let mut attrs = Vec::new();
        loop {
            let rest = self.rest();
            let ws = rest.len() - rest.trim_start().len();
            self.advance(ws);
            let rest = self.rest();
            if rest.starts_with("/>") {
                self.advance(2);
                self.open(name)?;
                self.pending_end = Some((name, line));
                return Ok(Token::Start { name, attrs, line });
            }
            if rest.starts_with('>') {
                self.advance(1);
                self.open(name)?;
                return Ok(Token::Start { name, attrs, line });
            }
            if rest.is_empty() {
                return Err(self.err("a start tag without its closing >"));
            }
            // name = "value"
            let an_len = rest
                .find(|c: char| c.is_whitespace() || c == '=' || c == '>' || c == '/')
                .unwrap_or(rest.len());
            let an = &rest[..an_len];
            if an.is_empty() || !an.chars().all(is_name_char) {
                return Err(self.err("a bad attribute in a start tag"));
            }
            self.advance(an_len);
            let rest = self.rest();
            let ws = rest.len() - rest.trim_start().len();
            self.advance(ws);
            if !self.rest().starts_with('=') {
                return Err(self.err("an attribute without = and a quoted value"));
            }
            self.advance(1);
            let rest = self.rest();
            let ws = rest.len() - rest.trim_start().len();
            self.advance(ws);
            let q = match self.rest().bytes().next() {
                Some(q @ (b'"' | b'\'')) => q,
                _ => return Err(self.err("an attribute value without quotes")),
            };
            self.advance(1);
            let delim = if q == b'"' { "\"" } else { "'" };
            let raw = self.skip_past(delim, "an attribute value without its closing quote")?;
            if raw.contains('<') {
                return Err(self.err("'<' inside an attribute value"));
            }
            let v = decode(raw).map_err(|m| self.err(m))?;
            attrs.push((an, v));
        }
    }

    fn open(&mut self, name: &'a str) -> Result<(), XmlError> {
        if self.stack.len() >= MAX_XML_DEPTH {
            return Err(self.err("elements nested too deep"));
        }
        self.stack.push(name);
        self.seen_root = true;
        Ok(())
    }
}

/// ASCII letters, digits, `_ - . :` and any non-ASCII character (XML allows most; the
/// importers only look for ASCII names, and this keeps the Unicode tables off the flash).
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':') || !c.is_ascii()
}

/// Character data with the predefined entities and character references decoded.
pub fn decode(raw: &str) -> Result<String, &'static str> {
    if !raw.contains('&') {
        return Ok(raw.to_string());
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let Some(semi) = after.find(';').filter(|&s| s <= 12) else {
            return Err("'&' that does not start an entity (write &amp;)");
        };
        let ent = &after[..semi];
        let c = match ent {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = ent.strip_prefix("#x").or(ent.strip_prefix("#X")) {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = ent.strip_prefix('#') {
                    dec.parse::<u32>().ok()
                } else {
                    return Err("an entity other than &lt; &gt; &amp; &quot; &apos; or &#N;");
                };
                match code.and_then(char::from_u32) {
                    Some(c) if c != '\0' => c,
                    _ => return Err("a character reference to no valid character"),
                }
            }
        };
        out.push(c);
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(src: &str) -> Result<Vec<Token<'_>>, XmlError> {
        let mut r = Reader::new(src);
        let mut v = Vec::new();
        while let Some(t) = r.next_token()? {
            v.push(t);
        }
        Ok(v)
    }

    #[test]
    fn elements_attributes_text_and_entities() {
        let src = "\u{feff}<?xml version=\"1.0\"?>\n<!DOCTYPE x [<!ENTITY boom \"boom\">]>\n<a k='1 &amp; 2'>\n <!-- c -->\n <b>x&lt;y&#38;&#x41;</b><c/><![CDATA[&raw;]]></a>";
        let t = all(src).unwrap();
        assert!(
            matches!(&t[0], Token::Start { name: "a", attrs, line: 3 } if attrs[0] == ("k", "1 & 2".to_string()))
        );
        assert!(t
            .iter()
            .any(|x| matches!(x, Token::Text { text, .. } if text == "x<y&A")));
        assert!(t.iter().any(|x| matches!(x, Token::End { name: "c", .. })));
        assert!(t
            .iter()
            .any(|x| matches!(x, Token::Text { text, .. } if text == "&raw;")));
    }

    #[test]
    fn broken_documents_are_errors_with_a_line() {
        for bad in [
            "",
            "<a>",
            "<a></b>",
            "<a>&boom;</a>",
            "<a>& </a>",
            "<a><!-- x</a>",
            "<a x=1></a>",
            "<a></a><b></b>",
            "text",
            "<a>&#0;</a>",
            "<a>&#xFFFFFFFF;</a>",
            "</a>",
            "<a b=\"<\"></a>",
            "< a></a>",
        ] {
            assert!(all(bad).is_err(), "{bad:?}");
        }
        let e = all("<a>\n\n<b></c></a>").unwrap_err();
        assert_eq!(e.line, 3);
        let deep = "<a>".repeat(MAX_XML_DEPTH + 1);
        assert_eq!(all(&deep).unwrap_err().message, "elements nested too deep");
    }

    #[test]
    fn garbage_never_panics() {
        // A deterministic pseudo-random walk over bytes that matter to the grammar.
        let alphabet = [
            "<", ">", "/", "!", "?", "-", "[", "]", "&", ";", "#", "x", "\"", "'", "=", " ", "\n",
            "a", "é", "CDATA", "<!--", "-->", "]]>",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let mut s = String::new();
            for _ in 0..(seed % 40) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                s.push_str(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            let _ = all(&s);
            seed = seed.wrapping_add(1);
        }
    }
}
