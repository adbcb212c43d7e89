//! Readers for what the emitters write, following the rules of the program that will read it:
//! Xen's libxlutil (xl.cfg and disk specs), QEMU's option parser, a POSIX shell and Cloud
//! Hypervisor's option parser. The emitters' tests and fuzz targets parse every emitted file or
//! command line back with these and require the values they started from, so an emitter can
//! never write a string that its consumer would split, truncate or reinterpret.
//!
//! Hand-written because no crate implements these grammars: they are small, and each one is
//! documented below with the consumer source it follows. Where the consumer accepts more than
//! anyboot ever writes (xl's `+=`, numeric string escapes), the reader either implements it or
//! refuses the input with a named reason, never guesses. The xl reader is checked against
//! libxlutil itself in `tests/emit_xl.rs`.

use crate::xl::XlValue;

/// Why a text cannot be read back.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{what} at byte {offset}: {reason}")]
pub struct ReadError {
    /// The grammar (`xl.cfg`, `shell`, ...).
    pub what: &'static str,
    /// Byte offset of the problem in the input.
    pub offset: usize,
    /// The rule broken.
    pub reason: String,
}

fn err<T>(what: &'static str, offset: usize, reason: impl Into<String>) -> Result<T, ReadError> {
    Err(ReadError {
        what,
        offset,
        reason: reason.into(),
    })
}

// ---------------------------------------------------------------------------------------------
// xl.cfg (tools/libs/util/libxlu_cfg_l.l, libxlu_cfg_y.y, libxlu_cfg.c)
// ---------------------------------------------------------------------------------------------

/// Parse an xl.cfg file the way libxlutil does: `IDENT = value` statements ended by a newline
/// or `;` (the last one may end the file), `#` comments to the end of the line, values that are strings (`"..."` or `'...'`,
/// no raw newline inside, the backslash escapes of `xlu__cfgl_dequote` (`\\ \" \' a b f n r t v`;
/// any other letter is an error, as in Xen 4.17), numbers (`[0-9]+` or
/// `0x[0-9a-f]+`, valued as `strtol(s, 0)`: a leading `0` is octal) or lists `[ v, v, ]` that
/// may span lines. A key set twice keeps the last value, as `xlu_cfg_get_*` sees it. `+=` is refused (anyboot never writes it).
pub fn xl_config(text: &str) -> Result<Vec<(String, XlValue)>, ReadError> {
    const W: &str = "xl.cfg";
    let b = text.as_bytes();
    let mut p = XlLexer { b, i: 0 };
    let mut out: Vec<(String, XlValue)> = Vec::new();
    loop {
        p.skip_blank();
        let Some(&c) = b.get(p.i) else { break };
        match c {
            b'\n' | b';' => {
                p.i += 1;
                continue;
            }
            b'#' => {
                p.skip_comment();
                continue;
            }
            b'a'..=b'z' => {}
            _ => {
                return err(
                    W,
                    p.i,
                    format!("unexpected {:?} where a key starts", char::from(c)),
                );
            }
        }
        let start = p.i;
        while p.i < b.len()
            && (b[p.i].is_ascii_lowercase()
                || b[p.i].is_ascii_digit()
                || b[p.i] == b'.'
                || b[p.i] == b'_')
        {
            p.i += 1;
        }
        let key = text[start..p.i].to_owned();
        p.skip_blank();
        match b.get(p.i) {
            Some(b'=') => p.i += 1,
            Some(b'+') if b.get(p.i + 1) == Some(&b'=') => {
                return err(W, p.i, "`+=` is not read by anyboot");
            }
            _ => return err(W, p.i, format!("expected `=` after key {key:?}")),
        }
        p.skip_blank();
        let value = p.value(0)?;
        p.skip_blank();
        match b.get(p.i) {
            // The grammar's `file: stmts | stmts assignment`: the last one needs no newline.
            None => {}
            Some(b'\n' | b';') => p.i += 1,
            Some(b'#') => p.skip_comment(),
            Some(&c) => {
                return err(
                    W,
                    p.i,
                    format!("unexpected {:?} after a value", char::from(c)),
                );
            }
        }
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => out.push((key, value)),
        }
    }
    Ok(out)
}

struct XlLexer<'a> {
    b: &'a [u8],
    i: usize,
}

impl XlLexer<'_> {
    const W: &'static str = "xl.cfg";

    fn skip_blank(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn skip_comment(&mut self) {
        while self.i < self.b.len() && self.b[self.i] != b'\n' {
            self.i += 1;
        }
        // The newline itself ends the statement: consume it too.
        if self.i < self.b.len() {
            self.i += 1;
        }
    }

    /// Blanks, newlines and comments (allowed between list items).
    fn skip_nl(&mut self) {
        loop {
            self.skip_blank();
            match self.b.get(self.i) {
                Some(b'\n') => self.i += 1,
                Some(b'#') => self.skip_comment(),
                _ => return,
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<XlValue, ReadError> {
        if depth > 64 {
            return err(Self::W, self.i, "lists nested deeper than 64");
        }
        match self.b.get(self.i) {
            Some(&q @ (b'"' | b'\'')) => self.string(q).map(XlValue::Str),
            Some(b'0'..=b'9') => self.number(),
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_nl();
                    if self.b.get(self.i) == Some(&b']') {
                        self.i += 1;
                        return Ok(XlValue::List(items));
                    }
                    items.push(self.value(depth + 1)?);
                    self.skip_nl();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {}
                        _ => return err(Self::W, self.i, "expected `,` or `]` in a list"),
                    }
                }
            }
            Some(&c) => err(
                Self::W,
                self.i,
                format!("unexpected {:?} where a value starts", char::from(c)),
            ),
            None => err(Self::W, self.i, "missing value"),
        }
    }

    fn number(&mut self) -> Result<XlValue, ReadError> {
        let start = self.i;
        let hex = self.b[self.i..].starts_with(b"0x");
        if hex {
            self.i += 2;
        }
        while self.i < self.b.len()
            && (self.b[self.i].is_ascii_digit() || (hex && matches!(self.b[self.i], b'a'..=b'f')))
        {
            self.i += 1;
        }
        let s = std::str::from_utf8(&self.b[start..self.i]).unwrap_or("");
        // `xlu_cfg_get_long` values the token with `strtol(s, 0)`: `0x` hex, a leading `0`
        // octal, decimal otherwise; a token it does not consume whole (`08`) is an error.
        let n = if hex {
            u64::from_str_radix(&s[2..], 16)
        } else if s.len() > 1 && s.starts_with('0') {
            u64::from_str_radix(&s[1..], 8)
        } else {
            s.parse()
        };
        n.map(XlValue::Int)
            .or_else(|_| err(Self::W, start, format!("number {s:?} out of range")))
    }

    /// A quoted string, de-escaped as `xlu__cfgl_dequote` does; the lexer takes no raw newline
    /// inside, and a backslash escapes any one character but a newline.
    fn string(&mut self, q: u8) -> Result<String, ReadError> {
        let start = self.i;
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(&c) = self.b.get(self.i) else {
                return err(Self::W, start, "unterminated string");
            };
            self.i += 1;
            match c {
                b'\n' => return err(Self::W, self.i - 1, "raw newline inside a string"),
                b'\\' => {
                    let Some(&nc) = self.b.get(self.i) else {
                        return err(Self::W, start, "unterminated string");
                    };
                    if nc == b'\n' {
                        return err(Self::W, self.i, "backslash before a newline");
                    }
                    self.i += 1;
                    match nc {
                        b'"' | b'\'' | b'\\' => out.push(nc),
                        b'a' => out.push(7),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'v' => out.push(11),
                        b'x' | b'0'..=b'7' => {
                            return err(
                                Self::W,
                                self.i - 2,
                                "numeric escapes are not read by anyboot",
                            );
                        }
                        _ => {
                            return err(Self::W, self.i - 2, "invalid character after backslash");
                        }
                    }
                }
                c if c == q => break,
                c => out.push(c),
            }
        }
        String::from_utf8(out).or_else(|_| err(Self::W, start, "string is not UTF-8"))
    }
}

/// One `xl-disk-configuration(5)` spec read as libxlutil's disk lexer does for the keyword
/// form anyboot writes: `key=value` items separated by commas (blanks before an item ignored,
/// a value running to the next comma), `target=` taking the rest of the line, commas included,
/// with trailing commas stripped (what follows a newline is lexed on).
/// Returns the items in order; `target` last.
pub fn xl_disk(spec: &str) -> Result<Vec<(String, String)>, ReadError> {
    const W: &str = "xl disk spec";
    let mut out = Vec::new();
    let mut rest = spec;
    let mut at = 0usize;
    loop {
        let trimmed = rest.trim_start_matches([' ', '\t', '\n']);
        at += rest.len() - trimmed.len();
        rest = trimmed;
        if rest.is_empty() {
            break;
        }
        if let Some(target) = rest.strip_prefix("target=") {
            // `target=.*`: the rest of the line (the lexer's `.` stops at a newline); lexing
            // goes on after it.
            let (line, more) = target.split_once('\n').unwrap_or((target, ""));
            out.push(("target".to_owned(), line.trim_end_matches(',').to_owned()));
            at += rest.len() - more.len();
            rest = more;
            continue;
        }
        let end = rest.find(',').unwrap_or(rest.len());
        let item = &rest[..end];
        let Some((k, v)) = item.split_once('=') else {
            return err(W, at, format!("{item:?} is not key=value"));
        };
        out.push((k.to_owned(), v.to_owned()));
        at += end;
        rest = &rest[end..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
        at += 1;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// QEMU (util/qemu-option.c: get_opt_name_value, get_opt_value; hw/i386/multiboot.c)
// ---------------------------------------------------------------------------------------------

/// QEMU options that take no argument, of those anyboot writes (`qemu-options.hx`).
const QEMU_NO_ARG: [&str; 4] = ["-nodefaults", "-no-user-config", "-nographic", "-no-reboot"];

/// A QEMU argv (program first) as QEMU's `lookup_opt` walks it: an option that takes an
/// argument takes the next word whatever it looks like. Returns `(option, argument)` pairs.
/// Only the options anyboot writes are known; any other is an error, as is a missing argument.
pub fn qemu_argv(argv: &[String]) -> Result<Vec<(String, Option<String>)>, ReadError> {
    const W: &str = "QEMU argv";
    const WITH_ARG: [&str; 12] = [
        "-M", "-accel", "-cpu", "-icount", "-m", "-smp", "-serial", "-kernel", "-initrd",
        "-append", "-drive", "-device",
    ];
    let mut out = Vec::new();
    let mut i = 1;
    while i < argv.len() {
        let o = argv[i].as_str();
        if QEMU_NO_ARG.contains(&o) {
            out.push((o.to_owned(), None));
            i += 1;
        } else if WITH_ARG.contains(&o) || o == "-global" {
            let Some(v) = argv.get(i + 1) else {
                return err(W, i, format!("{o} has no argument"));
            };
            out.push((o.to_owned(), Some(v.clone())));
            i += 2;
        } else {
            return err(W, i, format!("{o:?} is not an option anyboot writes"));
        }
    }
    Ok(out)
}

/// A QEMU `key=value,...` option string as QemuOpts splits it: a name runs to the first `=` or
/// `,`, a value to the first comma that is not doubled, and `,,` stands for one comma. A name
/// without `=` is a boolean set to `on` (QEMU's shorthand).
pub fn qemu_opts(s: &str) -> Vec<(String, String)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        let name = s[start..i].to_owned();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            let (value, next) = qemu_value(s, i);
            out.push((name, value));
            i = next;
        } else {
            out.push((name, "on".to_owned()));
        }
        if i < b.len() && b[i] == b',' {
            i += 1;
        }
    }
    out
}

/// The value starting at byte `i` of `s` up to the first single comma; returns it with `,,`
/// collapsed and the index of that comma (or the end).
fn qemu_value(s: &str, mut i: usize) -> (String, usize) {
    let b = s.as_bytes();
    let mut v = Vec::new();
    while i < b.len() {
        if b[i] == b',' {
            if b.get(i + 1) == Some(&b',') {
                v.push(b',');
                i += 2;
                continue;
            }
            break;
        }
        v.push(b[i]);
        i += 1;
    }
    // Splitting only at ASCII commas keeps UTF-8 intact.
    (String::from_utf8(v).unwrap_or_default(), i)
}

/// A `-drive file=` value as QEMU's block layer reads it: a name whose first `:` comes before
/// any `/` names a protocol (`path_has_protocol`), which is an error here (anyboot only means
/// plain files). Returns the file name.
pub fn qemu_block_filename(v: &str) -> Result<&str, ReadError> {
    if crate::qemu::path_has_protocol(v) {
        return err(
            "QEMU block filename",
            v.find(':').unwrap_or(0),
            "reads as a protocol prefix",
        );
    }
    Ok(v)
}

/// QEMU's multiboot `-initrd` argument: modules separated by single commas (`,,` is a comma),
/// each a file name up to the first space and, after it, the module's arguments. Returns
/// `(file, whole module string)` per module, as `hw/i386/multiboot.c` loads the file and
/// passes the whole string as the module's command line.
pub fn qemu_multiboot_modules(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let (m, next) = qemu_value(s, i);
        let file = m.split(' ').next().unwrap_or("").to_owned();
        out.push((file, m));
        if next >= s.len() {
            return out;
        }
        i = next + 1;
    }
}

// ---------------------------------------------------------------------------------------------
// POSIX shell (XCU 2.2 Quoting, 2.6.5 Field Splitting for the default IFS)
// ---------------------------------------------------------------------------------------------

/// Split a command line into words as a POSIX shell does for the constructs a pasted command
/// line may use: blanks separate words, `'...'` is literal, `"..."` is literal but for `\`
/// before `$`, `` ` ``, `"`, `\` or newline, and outside quotes `\` quotes the next character
/// (a backslash-newline vanishes). Any unquoted character that the shell would expand or
/// treat as an operator (`$`, `` ` ``, `|`, `&`, `;`, `<`, `>`, `(`, `)`, `*`, `?`, `[`, and `#` or `~` at a word's start) is an
/// error, as is `$` or `` ` `` inside double quotes: the line would not mean its words.
pub fn shell_words(line: &str) -> Result<Vec<String>, ReadError> {
    const W: &str = "shell line";
    let b = line.as_bytes();
    let mut words = Vec::new();
    let mut cur: Option<Vec<u8>> = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' => {
                if let Some(w) = cur.take() {
                    words.push(w);
                }
                i += 1;
            }
            b'\'' => {
                let w = cur.get_or_insert_with(Vec::new);
                let Some(end) = b[i + 1..].iter().position(|&x| x == b'\'') else {
                    return err(W, i, "unterminated single quote");
                };
                w.extend_from_slice(&b[i + 1..i + 1 + end]);
                i += end + 2;
            }
            b'"' => {
                let w = cur.get_or_insert_with(Vec::new);
                let start = i;
                i += 1;
                loop {
                    match b.get(i) {
                        None => return err(W, start, "unterminated double quote"),
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') if matches!(b.get(i + 1), Some(b'$' | b'`' | b'"' | b'\\')) => {
                            w.push(b[i + 1]);
                            i += 2;
                        }
                        Some(b'\\') if b.get(i + 1) == Some(&b'\n') => i += 2,
                        Some(b'$' | b'`') => {
                            return err(W, i, "expansion inside double quotes");
                        }
                        Some(&x) => {
                            w.push(x);
                            i += 1;
                        }
                    }
                }
            }
            b'\\' => match b.get(i + 1) {
                None => return err(W, i, "backslash at the end of the line"),
                Some(b'\n') => i += 2,
                Some(&x) => {
                    cur.get_or_insert_with(Vec::new).push(x);
                    i += 2;
                }
            },
            0 => return err(W, i, "a NUL byte, which no argv word can hold"),
            b'|' | b'&' | b';' | b'<' | b'>' | b'(' | b')' | b'$' | b'`' | b'*' | b'?' | b'[' => {
                return err(
                    W,
                    i,
                    format!("unquoted {:?} is special to the shell", char::from(c)),
                );
            }
            b'#' | b'~' if cur.is_none() => {
                return err(
                    W,
                    i,
                    format!(
                        "unquoted {:?} at a word's start is special to the shell",
                        char::from(c)
                    ),
                );
            }
            _ => {
                cur.get_or_insert_with(Vec::new).push(c);
                i += 1;
            }
        }
    }
    if let Some(w) = cur {
        words.push(w);
    }
    words
        .into_iter()
        .map(|w| String::from_utf8(w).or_else(|_| err(W, 0, "a word is not UTF-8")))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Cloud Hypervisor (option_parser/src/lib.rs: split_commas, OptionParser::parse)
// ---------------------------------------------------------------------------------------------

/// A Cloud Hypervisor argv (program first) as its clap parser reads it: `--flag VALUE` or
/// `--flag=VALUE`; a separate value may not start with `-` (clap would read it as a flag).
pub fn ch_argv(argv: &[String]) -> Result<Vec<(String, String)>, ReadError> {
    const W: &str = "Cloud Hypervisor argv";
    let mut out = Vec::new();
    let mut i = 1;
    while i < argv.len() {
        let a = &argv[i];
        let Some(flag) = a.strip_prefix("--") else {
            return err(W, i, format!("{a:?} is not a --flag"));
        };
        if let Some((f, v)) = flag.split_once('=') {
            out.push((format!("--{f}"), v.to_owned()));
            i += 1;
            continue;
        }
        match argv.get(i + 1) {
            Some(v) if !v.starts_with('-') => out.push((a.clone(), v.clone())),
            _ => return err(W, i, format!("{a:?} has no value")),
        }
        i += 2;
    }
    Ok(out)
}

/// A Cloud Hypervisor option string (`--disk path=...,readonly=on`) as its `OptionParser`
/// reads it: the whole string trimmed, split at commas outside `"..."` and `[...]`, every `"`
/// removed, each item split at its first `=`, the value trimmed. Unbalanced quotes or
/// brackets are errors there and here.
pub fn ch_options(s: &str) -> Result<Vec<(String, String)>, ReadError> {
    const W: &str = "Cloud Hypervisor option";
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut brackets = 0i64;
    let mut quoted = false;
    let lead = s.len() - s.trim_start().len();
    for (i, c) in s.trim().char_indices() {
        let i = i + lead;
        match c {
            '[' => {
                brackets += 1;
                cur.push(c);
            }
            ']' => {
                brackets -= 1;
                if brackets < 0 {
                    return err(W, i, "unbalanced `]`");
                }
                cur.push(c);
            }
            '"' => quoted = !quoted,
            ',' if brackets == 0 && !quoted => items.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    items.push(cur);
    if brackets != 0 || quoted {
        return err(W, s.len(), "unbalanced brackets or quotes");
    }
    if s.trim().is_empty() {
        return Ok(Vec::new());
    }
    Ok(items
        .into_iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.trim().to_owned()),
            None => (item, String::new()),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xl_reads_what_libxlutil_reads() {
        let cfg = xl_config(
            "# c\nname = \"a\\\"b\\\\c\\nd\" ; memory = 0x10\ndisk = [ 'x' ,\n 3, [ ],\n ]\nname='z'\n",
        )
        .unwrap();
        assert_eq!(
            cfg,
            vec![
                ("name".to_owned(), XlValue::Str("z".into())),
                ("memory".to_owned(), XlValue::Int(16)),
                (
                    "disk".to_owned(),
                    XlValue::List(vec![
                        XlValue::Str("x".into()),
                        XlValue::Int(3),
                        XlValue::List(vec![])
                    ])
                ),
            ]
        );
        assert_eq!(
            xl_config("a = 010").unwrap(),
            [("a".to_owned(), XlValue::Int(8))]
        );
        for bad in [
            "name = \"a\nb\"\n",
            "Name = 1\n",
            "a = 08\n",
            "a += 1\n",
            "a = \"\\x41\"\n",
            "a = [ 1 2 ]\n",
        ] {
            let e = xl_config(bad).unwrap_err();
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }

    #[test]
    fn xl_disk_target_takes_the_rest() {
        assert_eq!(
            xl_disk("format=raw, vdev=xvda, access=ro, target=/a, b=c,,").unwrap(),
            [
                ("format", "raw"),
                ("vdev", "xvda"),
                ("access", "ro"),
                ("target", "/a, b=c")
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn qemu_commas_double() {
        assert_eq!(
            qemu_opts("id=d0,file=/a,,b=c,,,,,readonly"),
            [("id", "d0"), ("file", "/a,b=c,,"), ("readonly", "on")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(
            qemu_multiboot_modules("/m a,,b,/n"),
            [("/m", "/m a,b"), ("/n", "/n")].map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn shell_words_follow_posix_quoting() {
        assert_eq!(
            shell_words("a 'b c' d'e'\\' \"f\\$g\" x=y").unwrap(),
            ["a", "b c", "de'", "f$g", "x=y"]
        );
        for bad in ["a $b", "a;b", "'a", "a `b`", "\"$x\"", "#a", "a*"] {
            assert!(shell_words(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ch_options_quote_commas() {
        assert_eq!(
            ch_options(" path=\"/a,b\" ,readonly=on").unwrap(),
            [("path", "/a,b"), ("readonly", "on")].map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert!(ch_options("path=\"x").is_err());
        assert!(ch_options("path=]").is_err());
    }

    #[test]
    fn readers_name_what_they_refuse() {
        let words = |w: &[&str]| w.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let msg = |e: ReadError| {
            let m = e.to_string();
            assert!(!m.contains('\n'), "{m:?}");
            m
        };
        assert_eq!(
            msg(qemu_argv(&words(&["qemu", "-kernel"])).unwrap_err()),
            "QEMU argv at byte 1: -kernel has no argument"
        );
        assert!(
            msg(qemu_argv(&words(&["qemu", "-hda", "x"])).unwrap_err())
                .contains("\"-hda\" is not an option")
        );
        assert_eq!(
            msg(ch_argv(&words(&["ch", "--kernel", "-x"])).unwrap_err()),
            "Cloud Hypervisor argv at byte 1: \"--kernel\" has no value"
        );
        assert!(
            msg(ch_argv(&words(&["ch", "x\ny"])).unwrap_err())
                .contains("\"x\\ny\" is not a --flag")
        );
        assert_eq!(
            msg(qemu_block_filename("nbd:host:10809").unwrap_err()),
            "QEMU block filename at byte 3: reads as a protocol prefix"
        );
        assert_eq!(qemu_block_filename("./nbd:x").unwrap(), "./nbd:x");
        assert_eq!(
            msg(shell_words("a\0b").unwrap_err()),
            "shell line at byte 1: a NUL byte, which no argv word can hold"
        );
        assert!(msg(xl_disk("vdev=xvda, raw").unwrap_err()).contains("\"raw\" is not key=value"));
        assert_eq!(
            msg(ch_options("  path=]").unwrap_err()),
            "Cloud Hypervisor option at byte 7: unbalanced `]`"
        );
    }
}
