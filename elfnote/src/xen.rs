//! Xen ELF notes (`XEN_ELFNOTE_*`, owner `"Xen"`) and their typed values.
//!
//! Written by hand because no crate carries this table: `object` and `goblin` know the ELF
//! container but not Xen's note numbers, and `xen-sys` is a placeholder. The numbers, names and
//! payload kinds follow Xen's `xen/include/public/elfnote.h`; the decoding rules follow libelf
//! (`xen/common/libelf/libelf-dominfo.c`) and Xen's `readnotes`, with one deliberate difference:
//! libelf silently reads a numeric note of an odd size as 0, while we refuse it and name the note.

use serde::Serialize;

use crate::{ByteOrder, ElfClass, NoteError};

/// `XEN_ELFNOTE_PHYS32_ENTRY`: the 32-bit physical entry point that marks a PVH kernel.
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
/// `XEN_ELFNOTE_PHYS32_RELOC`: the image can relocate itself (Xen 4.19+).
pub const XEN_ELFNOTE_PHYS32_RELOC: u32 = 19;
/// The owner name of Xen notes.
pub const XEN_OWNER: &str = "Xen";

/// How a note's descriptor is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Num,
    Features,
    FeatureBitmap,
    L1MfnValid,
    Phys32Entry,
    Phys32Reloc,
}

/// The note table: index = note type.
const TABLE: [(&str, Kind); 20] = [
    ("INFO", Kind::Str),
    ("ENTRY", Kind::Num),
    ("HYPERCALL_PAGE", Kind::Num),
    ("VIRT_BASE", Kind::Num),
    ("PADDR_OFFSET", Kind::Num),
    ("XEN_VERSION", Kind::Str),
    ("GUEST_OS", Kind::Str),
    ("GUEST_VERSION", Kind::Str),
    ("LOADER", Kind::Str),
    ("PAE_MODE", Kind::Str),
    ("FEATURES", Kind::Features),
    ("BSD_SYMTAB", Kind::Str),
    ("HV_START_LOW", Kind::Num),
    ("L1_MFN_VALID", Kind::L1MfnValid),
    ("SUSPEND_CANCEL", Kind::Num),
    ("INIT_P2M", Kind::Num),
    ("MOD_START_PFN", Kind::Num),
    ("SUPPORTED_FEATURES", Kind::FeatureBitmap),
    ("PHYS32_ENTRY", Kind::Phys32Entry),
    ("PHYS32_RELOC", Kind::Phys32Reloc),
];

/// Xen feature flag names by bit number (`xen/include/public/features.h`, `XENFEAT_*`).
pub const FEATURE_NAMES: [&str; 18] = [
    "writable_page_tables",
    "writable_descriptor_tables",
    "auto_translated_physmap",
    "supervisor_mode_kernel",
    "pae_pgdir_above_4gb",
    "mmu_pt_update_preserve_ad",
    "highmem_assist",
    "gnttab_map_avail_bits",
    "hvm_callback_vector",
    "hvm_safe_pvclock",
    "hvm_pirqs",
    "dom0",
    "grant_map_identity",
    "memory_op_vnode_supported",
    "ARM_SMCCC_supported",
    "linux_rsdp_unrestricted",
    "not_direct_mapped",
    "direct_mapped",
];

/// The name of Xen note type `n_type` (`"PHYS32_ENTRY"` for 18), or `None` past the table.
pub fn note_name(n_type: u32) -> Option<&'static str> {
    TABLE.get(n_type as usize).map(|(name, _)| *name)
}

/// One entry of the FEATURES string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Feature {
    /// The feature name, without the `!` marker.
    pub name: String,
    /// `true` when the name carried the `!` prefix: the guest requires the feature.
    pub required: bool,
}

/// One mask/value pair of L1_MFN_VALID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MaskValue {
    /// PTE bits to test.
    pub mask: u64,
    /// Value the masked bits must have.
    pub value: u64,
}

/// PHYS32_RELOC's three fields, with Xen's defaults applied to those absent from the note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Phys32Reloc {
    /// Required physical alignment of the image.
    pub align: u32,
    /// Lowest acceptable load address.
    pub min: u32,
    /// Highest acceptable load address.
    pub max: u32,
    /// Names of the fields that were absent and took Xen's default.
    pub defaulted: Vec<&'static str>,
}

/// The decoded value of a Xen note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum XenValue {
    /// A 4- or 8-byte number.
    Number(u64),
    /// A NUL-terminated string.
    Text(String),
    /// FEATURES: `|`-separated names, `!` marks a required one.
    Features(Vec<Feature>),
    /// SUPPORTED_FEATURES: a bitmap of `u32` words.
    FeatureBitmap {
        /// The raw words.
        words: Vec<u32>,
        /// Names of the set bits (`bit_N` for bits Xen has not named).
        flags: Vec<String>,
    },
    /// L1_MFN_VALID: mask/value pairs.
    MaskValues(Vec<MaskValue>),
    /// PHYS32_RELOC.
    Reloc(Phys32Reloc),
    /// A type this table does not know: the descriptor as lower-case hex.
    Raw(String),
}

/// A decoded Xen note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct XenNote {
    /// The note type (`n_type`).
    #[serde(rename = "type")]
    pub n_type: u32,
    /// Xen's name for it without the `XEN_ELFNOTE_` prefix, or `"UNKNOWN"`.
    pub name: &'static str,
    /// The typed value.
    pub value: XenValue,
    /// Descriptor size in bytes.
    pub desc_size: usize,
    /// File offset of the note header (within the inner ELF for a bzImage).
    pub offset: u64,
    /// For strings: no NUL inside the descriptor (Xen would read on past it).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unterminated: bool,
    /// The descriptor runs past the end of its note area; the value was read up to its NUL,
    /// as Xen's libelf reads it (readelf drops such a note with a warning).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// The descriptor bytes as stored.
    #[serde(skip)]
    pub raw: Vec<u8>,
}

impl XenNote {
    /// The PVH entry point, if this is a PHYS32_ENTRY note.
    pub fn phys32_entry(&self) -> Option<u32> {
        match (self.n_type, &self.value) {
            (XEN_ELFNOTE_PHYS32_ENTRY, XenValue::Number(v)) => u32::try_from(*v).ok(),
            _ => None,
        }
    }
}

/// Whether Xen reads note type `n_type` as a string.
pub(crate) fn is_string_note(n_type: u32) -> bool {
    matches!(
        TABLE.get(n_type as usize),
        Some((_, Kind::Str | Kind::Features))
    )
}

/// What a decoder needs to know about the image.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context {
    pub class: ElfClass,
    pub order: ByteOrder,
    /// Largest `p_align` of the PT_LOAD segments (for PHYS32_RELOC's default alignment).
    pub max_load_align: u64,
}

fn read_uint(order: ByteOrder, bytes: &[u8]) -> u64 {
    let mut v: u64 = 0;
    match order {
        ByteOrder::Little => {
            for &b in bytes.iter().rev() {
                v = (v << 8) | u64::from(b);
            }
        }
        ByteOrder::Big => {
            for &b in bytes {
                v = (v << 8) | u64::from(b);
            }
        }
    }
    v
}

/// A 4-byte word (callers pass exactly 4 bytes).
fn read_u32(order: ByteOrder, bytes: &[u8]) -> u32 {
    u32::try_from(read_uint(order, &bytes[..bytes.len().min(4)])).unwrap_or(u32::MAX)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The text of a string note: up to the first NUL, lossily decoded; `true` if no NUL was found.
pub(crate) fn note_string(desc: &[u8]) -> (String, bool) {
    match desc.iter().position(|&b| b == 0) {
        Some(end) => (String::from_utf8_lossy(&desc[..end]).into_owned(), false),
        None => (String::from_utf8_lossy(desc).into_owned(), true),
    }
}

/// Decode one Xen note. `offset` is the file offset of its header, for error messages.
pub(crate) fn decode(
    ctx: &Context,
    n_type: u32,
    desc: &[u8],
    offset: u64,
) -> Result<XenNote, NoteError> {
    let Some(&(name, kind)) = TABLE.get(n_type as usize) else {
        return Ok(XenNote {
            n_type,
            name: "UNKNOWN",
            value: XenValue::Raw(hex(desc)),
            desc_size: desc.len(),
            offset,
            unterminated: false,
            truncated: false,
            raw: desc.to_vec(),
        });
    };
    let bad = |rule: &'static str| NoteError::BadXenNote {
        name,
        n_type,
        offset,
        size: desc.len(),
        rule,
    };
    let mut unterminated = false;
    let value = match kind {
        Kind::Str => {
            let (text, unterm) = note_string(desc);
            unterminated = unterm;
            XenValue::Text(text)
        }
        Kind::Num => match desc.len() {
            4 | 8 => XenValue::Number(read_uint(ctx.order, desc)),
            _ => return Err(bad("a numeric note must be 4 or 8 bytes")),
        },
        Kind::Phys32Entry => match desc.len() {
            4 | 8 => {
                let v = read_uint(ctx.order, desc);
                if v > u64::from(u32::MAX) {
                    return Err(bad("the entry must be a 32-bit physical address"));
                }
                XenValue::Number(v)
            }
            _ => return Err(bad("PHYS32_ENTRY must be 4 or 8 bytes")),
        },
        Kind::Features => {
            let (text, unterm) = note_string(desc);
            unterminated = unterm;
            XenValue::Features(parse_features(&text))
        }
        Kind::FeatureBitmap => {
            if !desc.len().is_multiple_of(4) {
                return Err(bad(
                    "SUPPORTED_FEATURES must be a whole number of u32 words",
                ));
            }
            let words: Vec<u32> = desc
                .chunks_exact(4)
                .map(|w| read_u32(ctx.order, w))
                .collect();
            let mut flags = Vec::new();
            for (i, word) in words.iter().enumerate() {
                for bit in 0..32 {
                    if word & (1 << bit) != 0 {
                        let n = i * 32 + bit;
                        flags.push(
                            FEATURE_NAMES
                                .get(n)
                                .map_or_else(|| format!("bit_{n}"), |s| (*s).to_owned()),
                        );
                    }
                }
            }
            XenValue::FeatureBitmap { words, flags }
        }
        Kind::L1MfnValid => {
            // Xen's readnotes reads a 16-byte descriptor as one pair of u64 and an 8-byte one as a
            // pair of u32; we accept any number of pairs of the image's word size, plus the u32
            // pair in an ELF64 image.
            let word = match ctx.class {
                ElfClass::Elf64 if desc.len().is_multiple_of(16) => 8,
                _ if desc.len().is_multiple_of(8) => 4,
                _ => {
                    return Err(bad(
                        "L1_MFN_VALID must hold mask/value pairs of 4 or 8 bytes",
                    ));
                }
            };
            if desc.is_empty() {
                return Err(bad("L1_MFN_VALID must hold at least one mask/value pair"));
            }
            let pairs = desc
                .chunks_exact(2 * word)
                .map(|p| MaskValue {
                    mask: read_uint(ctx.order, &p[..word]),
                    value: read_uint(ctx.order, &p[word..]),
                })
                .collect();
            XenValue::MaskValues(pairs)
        }
        Kind::Phys32Reloc => {
            if !desc.len().is_multiple_of(4) || desc.len() > 12 {
                return Err(bad(
                    "PHYS32_RELOC must be 0 to 3 u32 words (align, min, max)",
                ));
            }
            let field = |i: usize| desc.get(i * 4..i * 4 + 4).map(|w| read_u32(ctx.order, w));
            let mut defaulted = Vec::new();
            // Xen's defaults: the largest PT_LOAD alignment if it is at least 4 KiB, else 2 MiB.
            let default_align = if ctx.max_load_align >= 0x1000 {
                u32::try_from(ctx.max_load_align).unwrap_or(u32::MAX)
            } else {
                0x20_0000
            };
            let align = field(0).unwrap_or_else(|| {
                defaulted.push("align");
                default_align
            });
            let min = field(1).unwrap_or_else(|| {
                defaulted.push("min");
                0
            });
            let max = field(2).unwrap_or_else(|| {
                defaulted.push("max");
                u32::MAX
            });
            XenValue::Reloc(Phys32Reloc {
                align,
                min,
                max,
                defaulted,
            })
        }
    };
    Ok(XenNote {
        n_type,
        name,
        value,
        desc_size: desc.len(),
        offset,
        unterminated,
        truncated: false,
        raw: desc.to_vec(),
    })
}

fn parse_features(text: &str) -> Vec<Feature> {
    text.split('|')
        .filter(|s| !s.is_empty())
        .map(|s| match s.strip_prefix('!') {
            Some(name) => Feature {
                name: name.to_owned(),
                required: true,
            },
            None => Feature {
                name: s.to_owned(),
                required: false,
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX64: Context = Context {
        class: ElfClass::Elf64,
        order: ByteOrder::Little,
        max_load_align: 0x20_0000,
    };

    #[test]
    fn features_keep_required_marker() {
        let n = decode(
            &CTX64,
            10,
            b"!writable_page_tables|pae_pgdir_above_4gb\0",
            0,
        )
        .unwrap();
        assert_eq!(
            n.value,
            XenValue::Features(vec![
                Feature {
                    name: "writable_page_tables".into(),
                    required: true
                },
                Feature {
                    name: "pae_pgdir_above_4gb".into(),
                    required: false
                },
            ])
        );
    }

    #[test]
    fn reloc_defaults_follow_xen() {
        let n = decode(&CTX64, 19, &0x1000u32.to_le_bytes(), 0).unwrap();
        let XenValue::Reloc(r) = n.value else {
            panic!("not a reloc")
        };
        assert_eq!((r.align, r.min, r.max), (0x1000, 0, u32::MAX));
        assert_eq!(r.defaulted, vec!["min", "max"]);
        let small = Context {
            max_load_align: 0x100,
            ..CTX64
        };
        let XenValue::Reloc(r) = decode(&small, 19, &[], 0).unwrap().value else {
            panic!("not a reloc")
        };
        assert_eq!(r.align, 0x20_0000);
    }

    #[test]
    fn odd_sizes_are_refused_with_the_note_named() {
        let e = decode(&CTX64, 18, &[0, 0x10], 0x40)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("PHYS32_ENTRY") && e.contains("0x40") && e.contains("2-byte"),
            "{e}"
        );
        let e = decode(&CTX64, 3, &[1, 2, 3], 0).unwrap_err().to_string();
        assert!(e.contains("VIRT_BASE"), "{e}");
    }

    #[test]
    fn big_endian_numbers() {
        let be = Context {
            order: ByteOrder::Big,
            ..CTX64
        };
        let n = decode(&be, 18, &0x0010_0000u32.to_be_bytes(), 0).unwrap();
        assert_eq!(n.phys32_entry(), Some(0x10_0000));
    }
}
