//! Xen `xl.cfg` files (`type = "pvh"` / `"pv"`) from a boot plan, written by hand: xl.cfg is
//! libxlutil's own grammar, not TOML or JSON.
//!
//! [`emit`] maps an inspected kernel and the plan options to a whole `xl.cfg`; it uses the value
//! writer below: [`quote`] for string literals, [`XlConfig`] for a whole file and
//! [`disk_spec`] for one `disk = [ … ]` entry.
//!
//! # Why by hand
//!
//! No serialisation crate speaks this format. Its grammar is defined only by Xen's lexer and
//! parser (`tools/libs/util/libxlu_cfg_l.l`, `libxlu_cfg_y.y`; unchanged from 4.17 to today) and
//! differs from every look-alike:
//! - keys match `[a-z][._0-9a-z]*`; an upper-case key is a lexical error;
//! - numbers are bare decimal (`0x1F`, `-1`, `1.5`, `True` are errors);
//! - string escapes are C-like but only `\\ \" \' \a \b \f \n \r \t \v` work: `\xHH` always
//!   fails ("invalid digit after backslash hex…") and octal is broken (`"x\101y"` reads as
//!   `"xy"`), so NUL and the other control characters cannot be written at all;
//! - a `#` comment needs its line feed: a final comment line without one is a parse error.
//!
//! The writer therefore emits one `key = value` line per key, LF line endings and a final
//! newline, decimal integers, double-quoted strings escaping only `\`, `"`, LF, CR and TAB,
//! and refuses anything it cannot represent instead of guessing. Every rule is checked against
//! libxlutil itself by `backends/tests/xl_oracle.rs`.
//!
//! ```
//! use backends::xl::{XlConfig, XlValue, disk_spec};
//!
//! let mut cfg = XlConfig::new();
//! cfg.comment("written by anyboot")?;
//! cfg.set("name", "demo")?;
//! cfg.set("memory", 512)?;
//! let disk = disk_spec("/srv/root.img", "xvda", false, "raw")?;
//! cfg.set("disk", vec![XlValue::from(disk)])?;
//! assert_eq!(
//!     cfg.render()?,
//!     "# written by anyboot\n\
//!      name = \"demo\"\n\
//!      memory = 512\n\
//!      disk = [ \"format=raw, vdev=xvda, access=rw, target=/srv/root.img\" ]\n"
//! );
//! # Ok::<(), backends::xl::XlError>(())
//! ```

use std::fmt::Write as _;

/// Why a value cannot be written as xl.cfg.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XlError {
    /// A string holds NUL, another C0 control character other than LF, CR and TAB, or DEL:
    /// xl.cfg has no working escape for them.
    #[error(
        "xl.cfg string cannot hold control character {ch:?} (U+{code:04X}) at byte offset {offset}",
        code = u32::from(*.ch)
    )]
    ControlChar {
        /// The character.
        ch: char,
        /// Its byte offset in the string.
        offset: usize,
    },
    /// A key does not match `[a-z][._0-9a-z]*`.
    #[error("invalid xl.cfg key {key:?}: keys must match [a-z][._0-9a-z]*")]
    InvalidKey {
        /// The key as given.
        key: String,
    },
    /// The value given for a key cannot be written.
    #[error("invalid value for xl.cfg key {key:?}: {error}")]
    Value {
        /// The key.
        key: String,
        /// What is wrong with the value.
        error: Box<XlError>,
    },
    /// A comment line holds a line break or another control character (TAB is allowed).
    #[error(
        "xl.cfg comment cannot hold {ch:?} (U+{code:04X}) at byte offset {offset}: \
         a comment is one line without control characters",
        code = u32::from(*.ch)
    )]
    CommentChar {
        /// The character.
        ch: char,
        /// Its byte offset in the comment text.
        offset: usize,
    },
    /// A `vdev` or `format` of a disk spec is empty or holds `,`, `=`, whitespace or a
    /// control character, which would split or corrupt the spec.
    #[error(
        "disk {param} {value:?} must be non-empty and free of ',', '=', whitespace and \
         control characters"
    )]
    DiskParam {
        /// `vdev` or `format`.
        param: &'static str,
        /// The value as given.
        value: String,
    },
    /// A disk target path is empty (libxlutil would accept it as "no medium").
    #[error("disk target path is empty")]
    EmptyDiskTarget,
    /// A disk target path ends with `,`, which libxlutil strips from `target=`.
    #[error("disk target path {path:?} ends with ',', which libxlutil's target= strips")]
    DiskTargetTrailingComma {
        /// The path as given.
        path: String,
    },
    /// A disk target path holds a line feed, where libxlutil's `target=` stops.
    #[error(
        "disk target path {path:?} has a line feed at byte offset {offset}, where libxlutil's \
         target= stops"
    )]
    DiskTargetNewline {
        /// The path as given.
        path: String,
        /// Byte offset of the line feed.
        offset: usize,
    },
}

/// `s` as a double-quoted xl.cfg string literal.
///
/// Escapes `\` → `\\`, `"` → `\"`, LF → `\n`, CR → `\r` and TAB → `\t`; everything else,
/// non-ASCII UTF-8 included, is copied unchanged. Never emits hex or octal escapes: libxlutil
/// rejects `\xHH` and drops octal escapes.
///
/// # Errors
///
/// [`XlError::ControlChar`] for NUL, any other C0 control character and DEL, which xl.cfg
/// cannot represent.
pub fn quote(s: &str) -> Result<String, XlError> {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for (offset, ch) in s.char_indices() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_control() => return Err(XlError::ControlChar { ch: c, offset }),
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(out)
}

/// Whether `key` matches libxlutil's identifier rule `[a-z][._0-9a-z]*`.
fn valid_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_')
}

/// One xl.cfg value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XlValue {
    /// A string, written double-quoted by [`quote`].
    Str(String),
    /// An integer, written in decimal. (`xl` reads integers with `strtol`, so values above
    /// `i64::MAX` parse as a file but fail as a number.)
    Int(u64),
    /// A list `[ a, b ]`; items may be strings, integers or lists.
    List(Vec<XlValue>),
}

impl From<&str> for XlValue {
    fn from(s: &str) -> Self {
        XlValue::Str(s.to_owned())
    }
}

impl From<String> for XlValue {
    fn from(s: String) -> Self {
        XlValue::Str(s)
    }
}

impl From<u64> for XlValue {
    fn from(n: u64) -> Self {
        XlValue::Int(n)
    }
}

impl From<Vec<XlValue>> for XlValue {
    fn from(items: Vec<XlValue>) -> Self {
        XlValue::List(items)
    }
}

impl XlValue {
    /// Append this value as xl.cfg text to `out`.
    fn write_to(&self, out: &mut String) -> Result<(), XlError> {
        match self {
            XlValue::Str(s) => out.push_str(&quote(s)?),
            XlValue::Int(n) => {
                let _ = write!(out, "{n}");
            }
            XlValue::List(items) if items.is_empty() => out.push_str("[ ]"),
            XlValue::List(items) => {
                out.push_str("[ ");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write_to(out)?;
                }
                out.push_str(" ]");
            }
        }
        Ok(())
    }
}

/// An xl.cfg file: an optional leading comment block, then `key = value` lines in the order
/// the keys were first set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XlConfig {
    comments: Vec<String>,
    entries: Vec<(String, XlValue)>,
}

impl XlConfig {
    /// An empty config.
    pub fn new() -> XlConfig {
        XlConfig::default()
    }

    /// Append one line to the leading comment block (written as `# text`).
    ///
    /// # Errors
    ///
    /// [`XlError::CommentChar`] if `text` holds LF, CR or any other control character
    /// except TAB.
    pub fn comment(&mut self, text: &str) -> Result<(), XlError> {
        check_comment(text)?;
        self.comments.push(text.to_owned());
        Ok(())
    }

    /// Set `key` to `value`. Setting a key again replaces its value in place (xl would take
    /// the last one; writing it once keeps the file unambiguous).
    ///
    /// # Errors
    ///
    /// [`XlError::InvalidKey`] unless `key` matches `[a-z][._0-9a-z]*`;
    /// [`XlError::Value`] if a string in `value` cannot be written (see [`quote`]).
    pub fn set(&mut self, key: &str, value: impl Into<XlValue>) -> Result<(), XlError> {
        if !valid_key(key) {
            return Err(XlError::InvalidKey {
                key: key.to_owned(),
            });
        }
        let value = value.into();
        value
            .write_to(&mut String::new())
            .map_err(|e| value_error(key, e))?;
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some((_, slot)) => *slot = value,
            None => self.entries.push((key.to_owned(), value)),
        }
        Ok(())
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&XlValue> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The keys and values in file order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &XlValue)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The file text: the comment lines, then `key = value` lines, each ending in LF.
    ///
    /// # Errors
    ///
    /// The errors of [`XlConfig::comment`] and [`XlConfig::set`] (checked again here).
    pub fn render(&self) -> Result<String, XlError> {
        let mut out = String::new();
        for text in &self.comments {
            check_comment(text)?;
            if text.is_empty() {
                out.push_str("#\n");
            } else {
                let _ = writeln!(out, "# {text}");
            }
        }
        for (key, value) in &self.entries {
            if !valid_key(key) {
                return Err(XlError::InvalidKey { key: key.clone() });
            }
            out.push_str(key);
            out.push_str(" = ");
            value.write_to(&mut out).map_err(|e| value_error(key, e))?;
            out.push('\n');
        }
        Ok(out)
    }
}

fn value_error(key: &str, error: XlError) -> XlError {
    XlError::Value {
        key: key.to_owned(),
        error: Box::new(error),
    }
}

fn check_comment(text: &str) -> Result<(), XlError> {
    match text
        .char_indices()
        .find(|&(_, c)| c.is_ascii_control() && c != '\t')
    {
        Some((offset, ch)) => Err(XlError::CommentChar { ch, offset }),
        None => Ok(()),
    }
}

/// Whether `s` can be a `vdev` or `format` value inside a disk spec.
fn valid_disk_param(s: &str) -> bool {
    !s.is_empty()
        && !s
            .chars()
            .any(|c| c == ',' || c == '=' || c.is_whitespace() || c.is_control())
}

/// One xl-disk-configuration(5) spec: `format=FORMAT, vdev=VDEV, access=ro|rw, target=PATH`.
///
/// `target=` comes last because it takes the rest of the spec, commas included; that is the
/// only way a path may contain commas. The result still has to be quoted (it is a string in
/// the `disk` list).
///
/// # Errors
///
/// - [`XlError::DiskParam`] if `vdev` or `format` is empty or holds `,`, `=`, whitespace or
///   a control character;
/// - [`XlError::EmptyDiskTarget`] for an empty path (xl reads it as a removable drive with no
///   medium);
/// - [`XlError::DiskTargetTrailingComma`] for a path ending in `,` (libxlutil strips it);
/// - [`XlError::DiskTargetNewline`] for a path holding LF (libxlutil's `target=` stops there);
/// - [`XlError::ControlChar`] for a path holding another character [`quote`] rejects.
pub fn disk_spec(path: &str, vdev: &str, read_only: bool, format: &str) -> Result<String, XlError> {
    for (param, value) in [("vdev", vdev), ("format", format)] {
        if !valid_disk_param(value) {
            return Err(XlError::DiskParam {
                param,
                value: value.to_owned(),
            });
        }
    }
    if path.is_empty() {
        return Err(XlError::EmptyDiskTarget);
    }
    if let Some(offset) = path.find('\n') {
        return Err(XlError::DiskTargetNewline {
            path: path.to_owned(),
            offset,
        });
    }
    if path.ends_with(',') {
        return Err(XlError::DiskTargetTrailingComma {
            path: path.to_owned(),
        });
    }
    quote(path)?;
    let access = if read_only { "ro" } else { "rw" };
    Ok(format!(
        "format={format}, vdev={vdev}, access={access}, target={path}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_only_the_five_characters() {
        assert_eq!(quote("").unwrap(), r#""""#);
        assert_eq!(quote("plain text").unwrap(), r#""plain text""#);
        assert_eq!(
            quote("a\\b\"c\nd\re\tf'g").unwrap(),
            r#""a\\b\"c\nd\re\tf'g""#
        );
        assert_eq!(quote("trailing\\").unwrap(), r#""trailing\\""#);
        assert_eq!(quote("$#;[]=,").unwrap(), r#""$#;[]=,""#);
    }

    #[test]
    fn quote_passes_non_ascii_through() {
        assert_eq!(quote("é 日本 🦀").unwrap(), "\"é 日本 🦀\"");
        // C1 controls are ordinary UTF-8 bytes to libxlutil's 8-bit lexer.
        assert_eq!(quote("\u{85}").unwrap(), "\"\u{85}\"");
    }

    #[test]
    fn quote_rejects_control_characters_with_their_offset() {
        assert_eq!(
            quote("ab\0c"),
            Err(XlError::ControlChar {
                ch: '\0',
                offset: 2
            })
        );
        assert_eq!(
            quote("é\u{1b}"),
            Err(XlError::ControlChar {
                ch: '\u{1b}',
                offset: 2
            })
        );
        assert_eq!(
            quote("\u{7f}"),
            Err(XlError::ControlChar {
                ch: '\u{7f}',
                offset: 0
            })
        );
        for c in (0u8..0x20).chain([0x7f]).map(char::from) {
            if !matches!(c, '\n' | '\r' | '\t') {
                assert!(quote(&format!("x{c}")).is_err(), "{c:?}");
            }
        }
        let msg = quote("ab\0c").unwrap_err().to_string();
        assert!(msg.contains("'\\0'") && msg.contains("U+0000"), "{msg}");
        assert!(msg.contains("byte offset 2"), "{msg}");
    }

    #[test]
    fn keys_follow_libxlutil_identifiers() {
        for key in ["name", "on_crash", "a", "x.y_z9", "a0"] {
            assert!(valid_key(key), "{key}");
        }
        for key in ["", "Name", "nAme", "0a", "_a", ".a", "a-b", "a b", "é"] {
            assert!(!valid_key(key), "{key}");
        }
        let mut cfg = XlConfig::new();
        let err = cfg.set("Memory", 1).unwrap_err();
        assert_eq!(
            err,
            XlError::InvalidKey {
                key: "Memory".into()
            }
        );
        assert!(err.to_string().contains("\"Memory\""), "{err}");
    }

    #[test]
    fn render_writes_lines_in_order() {
        let mut cfg = XlConfig::new();
        cfg.comment("generated").unwrap();
        cfg.comment("").unwrap();
        cfg.comment("tab\there").unwrap();
        cfg.set("name", "a \"b\"").unwrap();
        cfg.set("memory", 256).unwrap();
        cfg.set("vcpus", 1).unwrap();
        cfg.set("memory", 512).unwrap();
        cfg.set(
            "disk",
            vec![XlValue::from("x"), XlValue::from(3), XlValue::List(vec![])],
        )
        .unwrap();
        cfg.set("vif", Vec::new()).unwrap();
        assert_eq!(
            cfg.render().unwrap(),
            "# generated\n#\n# tab\there\nname = \"a \\\"b\\\"\"\nmemory = 512\nvcpus = 1\n\
             disk = [ \"x\", 3, [ ] ]\nvif = [ ]\n"
        );
        assert_eq!(cfg.get("memory"), Some(&XlValue::Int(512)));
        assert_eq!(
            cfg.entries().map(|(k, _)| k).collect::<Vec<_>>(),
            ["name", "memory", "vcpus", "disk", "vif"]
        );
        assert_eq!(XlConfig::new().render().unwrap(), "");
        let mut big = XlConfig::new();
        big.set("maxmem", u64::MAX).unwrap();
        assert_eq!(big.render().unwrap(), "maxmem = 18446744073709551615\n");
    }

    #[test]
    fn set_rejects_unwritable_values_naming_the_key() {
        let mut cfg = XlConfig::new();
        let err = cfg
            .set("disk", vec![XlValue::from("ok"), XlValue::from("b\u{1}")])
            .unwrap_err();
        assert_eq!(
            err,
            XlError::Value {
                key: "disk".into(),
                error: Box::new(XlError::ControlChar {
                    ch: '\u{1}',
                    offset: 1
                })
            }
        );
        let msg = err.to_string();
        assert!(
            msg.contains("\"disk\"") && msg.contains("byte offset 1"),
            "{msg}"
        );
        assert!(cfg.get("disk").is_none());
    }

    #[test]
    fn comments_are_single_lines() {
        let mut cfg = XlConfig::new();
        assert_eq!(
            cfg.comment("a\nb"),
            Err(XlError::CommentChar {
                ch: '\n',
                offset: 1
            })
        );
        assert!(cfg.comment("a\rb").is_err());
        assert!(cfg.comment("a\0b").is_err());
        assert!(cfg.comment("é ok # ; [").is_ok());
    }

    #[test]
    fn disk_spec_puts_target_last() {
        assert_eq!(
            disk_spec("/srv/a, b=c.img", "xvda", true, "raw").unwrap(),
            "format=raw, vdev=xvda, access=ro, target=/srv/a, b=c.img"
        );
        assert_eq!(
            disk_spec("/x", "xvdb", false, "qcow2").unwrap(),
            "format=qcow2, vdev=xvdb, access=rw, target=/x"
        );
    }

    #[test]
    fn disk_spec_rejects_what_would_split_or_vanish() {
        for bad in ["", "xv,da", "vdev=x", "xv da", "xv\tda", "x\0"] {
            assert_eq!(
                disk_spec("/x", bad, false, "raw"),
                Err(XlError::DiskParam {
                    param: "vdev",
                    value: bad.into()
                })
            );
            assert_eq!(
                disk_spec("/x", "xvda", false, bad),
                Err(XlError::DiskParam {
                    param: "format",
                    value: bad.into()
                })
            );
        }
        assert_eq!(
            disk_spec("", "xvda", false, "raw"),
            Err(XlError::EmptyDiskTarget)
        );
        assert_eq!(
            disk_spec("/a,", "xvda", false, "raw"),
            Err(XlError::DiskTargetTrailingComma { path: "/a,".into() })
        );
        assert_eq!(
            disk_spec("/a\nb", "xvda", false, "raw"),
            Err(XlError::DiskTargetNewline {
                path: "/a\nb".into(),
                offset: 2
            })
        );
        assert_eq!(
            disk_spec("/a\0", "xvda", false, "raw"),
            Err(XlError::ControlChar {
                ch: '\0',
                offset: 2
            })
        );
    }
}

/// Why no `xl.cfg` can be emitted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum XlEmitError {
    /// Xen cannot boot this kernel.
    #[error("Xen cannot boot this kernel: {0}")]
    CannotBoot(String),
    /// A value xl.cfg cannot hold.
    #[error(transparent)]
    Value(#[from] XlError),
    /// A path that is not UTF-8.
    #[error("{0:?}: path is not valid UTF-8")]
    NonUtf8Path(std::path::PathBuf),
}

fn utf8(p: &std::path::Path) -> Result<&str, XlEmitError> {
    p.to_str()
        .ok_or_else(|| XlEmitError::NonUtf8Path(p.to_path_buf()))
}

/// The `xl.cfg` that boots `kernel` under Xen.
///
/// - `type = "pvh"` when the kernel (or, for a bzImage, its inner vmlinux: Xen's toolstack
///   decompresses bzImages itself) carries XEN_ELFNOTE_PHYS32_ENTRY;
/// - `type = "pv"` for a kernel with only Xen PV notes or the legacy `__xen_guest` string;
/// - otherwise an error saying why.
///
/// The console is Xen's PV console, so a Linux guest without `--cmdline` gets `console=hvc0`.
/// Disks become `xvda`, `xvdb`, ... in order; `on_poweroff`/`on_crash` destroy the domain and
/// `on_reboot` restarts it (xl's defaults, written out).
pub fn emit(
    kernel: &std::path::Path,
    report: &loader::inspect::Report,
    opts: &loader::plan::PlanOptions,
) -> Result<String, XlEmitError> {
    use loader::inspect::Format;
    let pv_notes = report.xen_guest.is_some()
        || report.xen_notes.iter().any(|n| {
            n.n_type != elfnote::XEN_ELFNOTE_PHYS32_ENTRY
                && n.n_type != elfnote::XEN_ELFNOTE_PHYS32_RELOC
        });
    let (ty, why) = if report.pvh_entry.is_some() {
        (
            "pvh",
            if report.format == Format::Bzimage {
                "the bzImage's inner vmlinux carries XEN_ELFNOTE_PHYS32_ENTRY (xl decompresses it)"
            } else {
                "the kernel carries XEN_ELFNOTE_PHYS32_ENTRY"
            },
        )
    } else if pv_notes && report.format == Format::Elf {
        ("pv", "the kernel carries only Xen PV notes")
    } else {
        let what = match report.format {
            Format::Bzimage => "this bzImage's inner vmlinux has neither",
            Format::Elf => "this ELF has neither",
            _ => "this image is not an ELF and has neither",
        };
        return Err(XlEmitError::CannotBoot(format!(
            "xl boots an ELF (or a bzImage's inner ELF) with a PVH note (type = \"pvh\") or Xen PV notes (type = \"pv\"); {what}"
        )));
    };
    let linux = report.format == Format::Bzimage
        || report
            .guest_os
            .as_deref()
            .is_some_and(|g| g.eq_ignore_ascii_case("linux"));
    let cmdline = match &opts.cmdline {
        Some(c) => c.clone(),
        None if linux => "console=hvc0".into(),
        None => String::new(),
    };
    let mut cfg = XlConfig::new();
    cfg.comment(&format!("written by anyboot: type {ty} because {why}"))?;
    cfg.set(
        "name",
        opts.name
            .clone()
            .unwrap_or_else(|| loader::plan::default_name(kernel)),
    )?;
    cfg.set("type", ty)?;
    cfg.set("kernel", utf8(kernel)?)?;
    if let Some((initrd, _)) = &opts.initrd {
        cfg.set("ramdisk", utf8(initrd)?)?;
    }
    if !cmdline.is_empty() {
        cfg.set("cmdline", cmdline)?;
    }
    cfg.set(
        "memory",
        opts.mem_mib.unwrap_or(loader::plan::DEFAULT_MEM_MIB),
    )?;
    cfg.set("vcpus", u64::from(opts.cpus.unwrap_or(1)))?;
    if !opts.disks.is_empty() {
        let mut disks = Vec::new();
        for (i, d) in opts.disks.iter().enumerate() {
            let letter = char::from(b'a' + u8::try_from(i % 26).unwrap_or(0));
            let vdev = if i < 26 {
                format!("xvd{letter}")
            } else {
                format!(
                    "xvd{}{letter}",
                    char::from(b'a' + u8::try_from(i / 26 - 1).unwrap_or(0))
                )
            };
            disks.push(XlValue::from(disk_spec(
                utf8(&d.path)?,
                &vdev,
                d.read_only,
                "raw",
            )?));
        }
        cfg.set("disk", disks)?;
    }
    cfg.set("on_poweroff", "destroy")?;
    cfg.set("on_reboot", "restart")?;
    cfg.set("on_crash", "destroy")?;
    Ok(cfg.render()?)
}
