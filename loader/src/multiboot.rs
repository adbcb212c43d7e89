//! Multiboot v1 headers (Multiboot Specification 0.6.96 §3.1) and multiboot2 detection.
//!
//! Hand-written: the header is five words found by a scan, and no maintained crate reads the
//! v1 header on the loader side (the `multiboot` crate targets kernels reading the info
//! structure).

use serde::Serialize;

/// Multiboot v1 header magic.
pub const MULTIBOOT_MAGIC: u32 = 0x1bad_b002;
/// Value a multiboot v1 loader passes in EAX.
pub const MULTIBOOT_BOOTLOADER_MAGIC: u32 = 0x2bad_b002;
/// Multiboot2 header magic.
pub const MULTIBOOT2_MAGIC: u32 = 0xe852_50d6;
/// The v1 header must lie within this many leading bytes.
pub const MULTIBOOT_SEARCH: usize = 8192;
/// The multiboot2 header must lie within this many leading bytes.
pub const MULTIBOOT2_SEARCH: usize = 32768;
/// Flag bit 0: page-align modules.
pub const MB_PAGE_ALIGN: u32 = 1 << 0;
/// Flag bit 1: provide memory information.
pub const MB_MEMORY_INFO: u32 = 1 << 1;
/// Flag bit 2: video mode table requested.
pub const MB_VIDEO_MODE: u32 = 1 << 2;
/// Flag bit 16: the a.out-kludge address fields are valid.
pub const MB_AOUT_KLUDGE: u32 = 1 << 16;

fn word(data: &[u8], off: usize) -> Option<u32> {
    let b = data.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The a.out-kludge address fields (flag bit 16).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AoutKludge {
    /// Physical address the header's magic is loaded to.
    pub header_addr: u32,
    /// Physical start of the text.
    pub load_addr: u32,
    /// Physical end of the data (0: to the end of the file).
    pub load_end_addr: u32,
    /// End of the BSS (0: none).
    pub bss_end_addr: u32,
    /// Physical entry point.
    pub entry_addr: u32,
    /// File offset loading starts from: header offset − (header_addr − load_addr).
    pub load_file_offset: Option<u64>,
}

/// A multiboot v1 header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MultibootHeader {
    /// File offset of the magic.
    pub offset: u64,
    /// `flags`.
    pub flags: u32,
    /// Names of the set flag bits.
    pub flag_names: Vec<String>,
    /// `checksum`.
    pub checksum: u32,
    /// The a.out-kludge fields, when flag bit 16 is set.
    pub aout_kludge: Option<AoutKludge>,
    /// Video mode fields (mode_type, width, height, depth), when flag bit 2 is set.
    pub video_mode: Option<[u32; 4]>,
    /// Required-flag bits (0–15) that the specification does not define: a loader must refuse
    /// the image.
    pub unknown_required_flags: u32,
    /// What a loader would refuse about the header, in words.
    pub problems: Vec<String>,
}

/// A multiboot2 header (detected and reported; not booted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Multiboot2Header {
    /// File offset of the magic.
    pub offset: u64,
    /// `architecture` (0 = i386 protected mode, 4 = MIPS32).
    pub architecture: u32,
    /// `header_length`.
    pub header_length: u32,
}

fn flag_names(flags: u32) -> Vec<String> {
    (0..32)
        .filter(|b| flags & (1 << b) != 0)
        .map(|b| match b {
            0 => "PAGE_ALIGN".to_owned(),
            1 => "MEMORY_INFO".to_owned(),
            2 => "VIDEO_MODE".to_owned(),
            16 => "AOUT_KLUDGE".to_owned(),
            _ => format!("bit_{b}"),
        })
        .collect()
}

impl MultibootHeader {
    /// Find the first valid v1 header (magic + flags + checksum = 0) in the first 8 KiB, at a
    /// 4-byte-aligned offset, as the specification and QEMU do.
    pub fn find(data: &[u8]) -> Option<MultibootHeader> {
        let limit = data.len().min(MULTIBOOT_SEARCH);
        (0..limit.saturating_sub(11))
            .step_by(4)
            .find_map(|off| Self::at(data, off))
    }

    fn at(data: &[u8], off: usize) -> Option<MultibootHeader> {
        if word(data, off)? != MULTIBOOT_MAGIC {
            return None;
        }
        let flags = word(data, off + 4)?;
        let checksum = word(data, off + 8)?;
        if MULTIBOOT_MAGIC.wrapping_add(flags).wrapping_add(checksum) != 0 {
            return None;
        }
        let mut problems = Vec::new();
        let unknown_required_flags =
            flags & 0xffff & !(MB_PAGE_ALIGN | MB_MEMORY_INFO | MB_VIDEO_MODE);
        if unknown_required_flags != 0 {
            problems.push(format!(
                "flags {flags:#x} at offset {:#x} set required bits {unknown_required_flags:#x} that the specification does not define",
                off + 4
            ));
        }
        let aout_kludge = if flags & MB_AOUT_KLUDGE != 0 {
            let f = |i: usize| word(data, off + 12 + 4 * i);
            match (f(0), f(1), f(2), f(3), f(4)) {
                (
                    Some(header_addr),
                    Some(load_addr),
                    Some(load_end_addr),
                    Some(bss_end_addr),
                    Some(entry_addr),
                ) => {
                    let load_file_offset = header_addr
                        .checked_sub(load_addr)
                        .and_then(|d| (off as u64).checked_sub(u64::from(d)));
                    if header_addr < load_addr {
                        problems.push(format!(
                            "header_addr {header_addr:#x} is below load_addr {load_addr:#x}"
                        ));
                    } else if load_file_offset.is_none() {
                        problems.push(format!(
                            "header_addr - load_addr = {:#x} reaches before the start of the file (header at offset {off:#x})",
                            header_addr - load_addr
                        ));
                    }
                    if load_end_addr != 0 && load_end_addr < load_addr {
                        problems.push(format!(
                            "load_end_addr {load_end_addr:#x} is below load_addr {load_addr:#x}"
                        ));
                    }
                    if bss_end_addr != 0 && bss_end_addr < load_end_addr {
                        problems.push(format!(
                            "bss_end_addr {bss_end_addr:#x} is below load_end_addr {load_end_addr:#x}"
                        ));
                    }
                    Some(AoutKludge {
                        header_addr,
                        load_addr,
                        load_end_addr,
                        bss_end_addr,
                        entry_addr,
                        load_file_offset,
                    })
                }
                _ => {
                    problems.push(format!(
                        "flag bit 16 (a.out kludge) is set but the file ends inside the address fields at offset {:#x}",
                        off + 12
                    ));
                    None
                }
            }
        } else {
            None
        };
        let video_mode = if flags & MB_VIDEO_MODE != 0 {
            let f = |i: usize| word(data, off + 32 + 4 * i);
            match (f(0), f(1), f(2), f(3)) {
                (Some(a), Some(b), Some(c), Some(d)) => Some([a, b, c, d]),
                _ => None,
            }
        } else {
            None
        };
        Some(MultibootHeader {
            offset: off as u64,
            flags,
            flag_names: flag_names(flags),
            checksum,
            aout_kludge,
            video_mode,
            unknown_required_flags,
            problems,
        })
    }

    /// The entry point the header names (a.out kludge only).
    pub fn entry(&self) -> Option<u32> {
        self.aout_kludge.as_ref().map(|k| k.entry_addr)
    }
}

impl Multiboot2Header {
    /// Find a multiboot2 header (magic, architecture, header_length, checksum summing to 0) in
    /// the first 32 KiB at an 8-byte-aligned offset.
    pub fn find(data: &[u8]) -> Option<Multiboot2Header> {
        let limit = data.len().min(MULTIBOOT2_SEARCH);
        (0..limit.saturating_sub(15)).step_by(8).find_map(|off| {
            if word(data, off)? != MULTIBOOT2_MAGIC {
                return None;
            }
            let architecture = word(data, off + 4)?;
            let header_length = word(data, off + 8)?;
            let checksum = word(data, off + 12)?;
            let sum = MULTIBOOT2_MAGIC
                .wrapping_add(architecture)
                .wrapping_add(header_length)
                .wrapping_add(checksum);
            (sum == 0).then_some(Multiboot2Header {
                offset: off as u64,
                architecture,
                header_length,
            })
        })
    }
}
