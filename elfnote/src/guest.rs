//! The legacy `__xen_guest` section of Xen PV kernels (rumprun, old Linux and NetBSD/Xen):
//! one NUL-terminated string of comma-separated `KEY=VALUE` pairs, e.g.
//! `GUEST_OS=rumprun,XEN_VER=xen-3.0,VIRT_BASE=0x0,HYPERCALL_PAGE=0x2,LOADER=generic`.
//!
//! Hand-written: it is a tiny Xen-specific string format that no crate parses.

use serde::Serialize;

/// The section's name.
pub const SECTION_NAME: &str = "__xen_guest";

/// One `KEY` or `KEY=VALUE` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuestEntry {
    /// The key, e.g. `GUEST_OS`.
    pub key: String,
    /// The value; `None` for a bare key such as `BSD_SYMTAB`.
    pub value: Option<String>,
}

/// The parsed `__xen_guest` string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct XenGuest {
    /// The string as stored (up to the first NUL).
    pub raw: String,
    /// Its entries, in order.
    pub entries: Vec<GuestEntry>,
    /// File offset of the section.
    pub offset: u64,
}

impl XenGuest {
    /// Parse the section contents.
    pub fn parse(data: &[u8], offset: u64) -> XenGuest {
        let (raw, _) = crate::xen::note_string(data);
        let entries = raw
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|item| match item.split_once('=') {
                Some((k, v)) => GuestEntry {
                    key: k.to_owned(),
                    value: Some(v.to_owned()),
                },
                None => GuestEntry {
                    key: item.to_owned(),
                    value: None,
                },
            })
            .collect();
        XenGuest {
            raw,
            entries,
            offset,
        }
    }

    /// The value of `key` (the last one wins, as in Xen).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.key == key)
            .and_then(|e| e.value.as_deref())
    }

    /// A numeric entry read as C's `strtoull(value, NULL, 0)` would: `0x` hex, leading-0 octal,
    /// else decimal. `None` if absent or not a number.
    pub fn number(&self, key: &str) -> Option<u64> {
        let v = self.get(key)?.trim();
        if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
            u64::from_str_radix(h, 16).ok()
        } else if v.len() > 1 && v.starts_with('0') {
            u64::from_str_radix(&v[1..], 8).ok()
        } else {
            v.parse().ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rumprun_string() {
        let g = XenGuest::parse(
            b"GUEST_OS=rumprun,XEN_VER=xen-3.0,VIRT_BASE=0x0,ELF_PADDR_OFFSET=0x0,HYPERCALL_PAGE=0x2,LOADER=generic,BSD_SYMTAB\0junk",
            0,
        );
        assert_eq!(g.get("GUEST_OS"), Some("rumprun"));
        assert_eq!(g.number("HYPERCALL_PAGE"), Some(2));
        assert_eq!(g.entries.last().unwrap().value, None);
        assert!(!g.raw.contains("junk"));
    }

    #[test]
    fn strtoull_bases() {
        let g = XenGuest::parse(b"A=010,B=0x1f,C=12,D=zz", 0);
        assert_eq!(g.number("A"), Some(8));
        assert_eq!(g.number("B"), Some(31));
        assert_eq!(g.number("C"), Some(12));
        assert_eq!(g.number("D"), None);
    }
}
