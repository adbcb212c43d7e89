//! The Linux x86 boot protocol's setup header, as a bzImage carries it at file offset 0x1f1.
//!
//! Field offsets and their protocol versions come from the kernel's
//! `Documentation/arch/x86/boot.rst`. We read fields by offset from the image bytes; the
//! `#[repr(C)]` mirror of the structure for writing the zero page comes with the boot plan.
//! Hand-written because no maintained crate parses the header beyond what a loader needs to copy
//! it (`linux-loader` stops at `HdrS`, the version and `LOADED_HIGH`).

use zerocopy::FromBytes;

/// `"HdrS"` at 0x202.
pub const HDRS_MAGIC: &[u8; 4] = b"HdrS";
/// Offset of the setup header in the file (and in the zero page).
pub const SETUP_HEADER_OFFSET: usize = 0x1f1;
/// End of the 2.15 setup header (`0x202 + 0x6a`).
pub const SETUP_HEADER_END_2_15: usize = 0x26c;
/// Entry offset of the 64-bit entry point from the start of the protected-mode code.
pub const ENTRY64_OFFSET: u64 = 0x200;

/// `loadflags` bit names.
const LOADFLAGS: [(u8, &str); 5] = [
    (0, "LOADED_HIGH"),
    (1, "KASLR_FLAG"),
    (5, "QUIET_FLAG"),
    (6, "KEEP_SEGMENTS"),
    (7, "CAN_USE_HEAP"),
];

/// `xloadflags` bit names (bit 7 is set at run time by newer decompressors).
const XLOADFLAGS: [&str; 8] = [
    "XLF_KERNEL_64",
    "XLF_CAN_BE_LOADED_ABOVE_4G",
    "XLF_EFI_HANDOVER_32",
    "XLF_EFI_HANDOVER_64",
    "XLF_EFI_KEXEC",
    "XLF_5LEVEL",
    "XLF_5LEVEL_ENABLED",
    "XLF_MEM_ENCRYPTION",
];

/// `xloadflags` bit 0: the kernel has the 64-bit entry at +0x200.
pub const XLF_KERNEL_64: u16 = 1 << 0;
/// `xloadflags` bit 1: kernel, boot_params, cmdline and ramdisk may live above 4 GiB.
pub const XLF_CAN_BE_LOADED_ABOVE_4G: u16 = 1 << 1;
/// `loadflags` bit 0: protected-mode code loads at 0x100000 (a bzImage).
pub const LOADED_HIGH: u8 = 1 << 0;

/// Errors reading a setup header.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The file ends inside the header.
    #[error("truncated setup header: needs {needs:#x} bytes, file has {has:#x}")]
    Truncated {
        /// Bytes the header needs.
        needs: usize,
        /// Bytes the file has.
        has: usize,
    },
    /// `HdrS` is missing.
    #[error("no Linux setup header: \"HdrS\" missing at offset 0x202")]
    NoMagic,
    /// The header is older than any protocol we read.
    #[error("boot protocol {version} at offset 0x206 is older than 2.00")]
    TooOld {
        /// The version found.
        version: String,
    },
    /// The payload fields point outside the file.
    #[error(
        "payload at file offset {offset:#x} with {length:#x} bytes (payload_offset at 0x248, payload_length at 0x24c) extends past the end of the file ({file_len:#x} bytes)"
    )]
    PayloadOutOfFile {
        /// File offset of the payload.
        offset: u64,
        /// Its declared length.
        length: u64,
        /// File size.
        file_len: u64,
    },
    /// The payload is too short to hold the size trailer.
    #[error(
        "payload_length at offset 0x24c is {length}, too short for the 4-byte uncompressed-size trailer"
    )]
    PayloadTooShort {
        /// The declared length.
        length: u32,
    },
}

fn u8_at(b: &[u8], off: usize) -> u8 {
    b.get(off).copied().unwrap_or(0)
}
fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([u8_at(b, off), u8_at(b, off + 1)])
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([
        u8_at(b, off),
        u8_at(b, off + 1),
        u8_at(b, off + 2),
        u8_at(b, off + 3),
    ])
}

/// The setup header, every field up to boot protocol 2.15, as the zero page carries it. Fields
/// a protocol version does not define read as 0; the methods below apply the protocol's
/// defaults.
pub use crate::abi::linux::SetupHeader;

impl SetupHeader {
    /// Whether `data` (the start of a file) carries `HdrS` at 0x202.
    pub fn detect(data: &[u8]) -> bool {
        data.get(0x202..0x206) == Some(HDRS_MAGIC)
    }

    /// Parse the header from the start of the file. `data` must hold the header as far as its
    /// jump instruction at 0x200 says it extends (0x26c for protocol 2.15).
    pub fn parse(data: &[u8]) -> Result<SetupHeader, SetupError> {
        if data.len() < 0x206 {
            return Err(SetupError::Truncated {
                needs: SETUP_HEADER_END_2_15,
                has: data.len(),
            });
        }
        if !Self::detect(data) {
            return Err(SetupError::NoMagic);
        }
        // The jump at 0x200 (EB xx) skips the header: it ends at 0x202 + xx.
        let end = (0x202 + usize::from(data[0x201])).min(SETUP_HEADER_END_2_15);
        let version = u16_at(data, 0x206);
        let needs = match version {
            v if v >= 0x020f => 0x26c,
            v if v >= 0x020b => 0x268,
            v if v >= 0x020a => 0x264,
            v if v >= 0x0209 => 0x258,
            v if v >= 0x0208 => 0x250,
            _ => 0x230,
        }
        .min(end.max(0x230));
        if data.len() < needs {
            return Err(SetupError::Truncated {
                needs,
                has: data.len(),
            });
        }
        if version < 0x0200 {
            return Err(SetupError::TooOld {
                version: format_version(version),
            });
        }
        // Bytes past the header's own end belong to the setup code, not to header fields: they
        // stay zero.
        let mut raw = [0u8; SETUP_HEADER_END_2_15 - SETUP_HEADER_OFFSET];
        let fields = &data[SETUP_HEADER_OFFSET..needs.min(end.max(0x206))];
        raw[..fields.len()].copy_from_slice(fields);
        SetupHeader::read_from_bytes(&raw[..]).map_err(|_| SetupError::Truncated {
            needs: SETUP_HEADER_END_2_15,
            has: data.len(),
        })
    }

    /// The protocol version as `"2.15"`.
    pub fn protocol(&self) -> String {
        format_version(self.version)
    }

    /// Whether the protocol version is at least `major.minor`.
    pub fn at_least(&self, major: u8, minor: u8) -> bool {
        self.version >= (u16::from(major) << 8 | u16::from(minor))
    }

    /// Real-mode setup sectors (0 means 4).
    pub fn setup_sectors(&self) -> u32 {
        if self.setup_sects == 0 {
            4
        } else {
            u32::from(self.setup_sects)
        }
    }

    /// File offset of the protected-mode code: `(setup_sects + 1) * 512`.
    pub fn protected_mode_offset(&self) -> u64 {
        u64::from(self.setup_sectors() + 1) * 512
    }

    /// Highest address an initrd may occupy (0x37ffffff before protocol 2.03).
    pub fn initrd_addr_max(&self) -> u32 {
        if self.at_least(2, 3) {
            self.initrd_addr_max
        } else {
            0x37ff_ffff
        }
    }

    /// Longest command line, without its NUL (255 before protocol 2.06).
    pub fn cmdline_size(&self) -> u32 {
        if self.at_least(2, 6) {
            self.cmdline_size
        } else {
            255
        }
    }

    /// `xloadflags`, defined from protocol 2.12.
    pub fn xloadflags(&self) -> u16 {
        if self.at_least(2, 12) {
            self.xloadflags
        } else {
            0
        }
    }

    /// Whether the 64-bit entry at load address + 0x200 exists (2.12+ and XLF_KERNEL_64).
    pub fn has_entry64(&self) -> bool {
        self.xloadflags() & XLF_KERNEL_64 != 0
    }

    /// Whether this is a bzImage (LOADED_HIGH) rather than an old zImage.
    pub fn loaded_high(&self) -> bool {
        self.loadflags & LOADED_HIGH != 0
    }

    /// Names of the set `loadflags` bits.
    pub fn loadflag_names(&self) -> Vec<String> {
        let mut v = Vec::new();
        for bit in 0..8u8 {
            if self.loadflags & (1 << bit) != 0 {
                v.push(
                    LOADFLAGS
                        .iter()
                        .find(|(b, _)| *b == bit)
                        .map_or_else(|| format!("bit_{bit}"), |(_, n)| (*n).to_owned()),
                );
            }
        }
        v
    }

    /// Names of the set `xloadflags` bits.
    pub fn xloadflag_names(&self) -> Vec<String> {
        let x = self.xloadflags();
        (0..16u16)
            .filter(|bit| x & (1 << bit) != 0)
            .map(|bit| {
                XLOADFLAGS
                    .get(usize::from(bit))
                    .map_or_else(|| format!("bit_{bit}"), |n| (*n).to_owned())
            })
            .collect()
    }

    /// The payload's file offset and length, where the protocol (2.08+) defines them, checked
    /// against the file size.
    pub fn payload_range(&self, file_len: u64) -> Result<Option<(u64, u32)>, SetupError> {
        if !self.at_least(2, 8) || self.payload_length == 0 {
            return Ok(None);
        }
        let offset = self.protected_mode_offset() + u64::from(self.payload_offset);
        let length = u64::from(self.payload_length);
        if offset + length > file_len {
            return Err(SetupError::PayloadOutOfFile {
                offset,
                length,
                file_len,
            });
        }
        if self.payload_length < 4 {
            return Err(SetupError::PayloadTooShort {
                length: self.payload_length,
            });
        }
        Ok(Some((offset, self.payload_length)))
    }
}

/// `0x020f` as `"2.15"`.
pub fn format_version(v: u16) -> String {
    format!("{}.{:02}", v >> 8, v & 0xff)
}

/// The kernel version string at `kernel_version + 0x200`, if the field is set and the string is
/// inside `data` (NUL-terminated, at most 512 bytes).
pub fn kernel_version_string(h: &SetupHeader, data: &[u8]) -> Option<String> {
    if h.kernel_version == 0 {
        return None;
    }
    let start = usize::from(h.kernel_version) + 0x200;
    let tail = data.get(start..)?;
    let tail = &tail[..tail.len().min(512)];
    let end = tail.iter().position(|&b| b == 0)?;
    Some(String::from_utf8_lossy(&tail[..end]).into_owned())
}

/// The PE header of an EFI-stub kernel: "MZ" at 0 and "PE\0\0" at the offset stored at 0x3c.
/// Returns the PE header offset.
pub fn pe_header_offset(data: &[u8]) -> Option<u32> {
    if data.get(..2) != Some(b"MZ") {
        return None;
    }
    let off = u32_at(data, 0x3c);
    let at = usize::try_from(off).ok()?;
    (data.get(at..at.checked_add(4)?) == Some(b"PE\0\0")).then_some(off)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_format() {
        assert_eq!(format_version(0x020f), "2.15");
        assert_eq!(format_version(0x0208), "2.08");
    }

    #[test]
    fn truncated_is_reported_with_sizes() {
        let mut d = vec![0u8; 0x240];
        d[0x201] = 0x6a;
        d[0x202..0x206].copy_from_slice(b"HdrS");
        d[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        let e = SetupHeader::parse(&d).unwrap_err().to_string();
        assert_eq!(
            e,
            "truncated setup header: needs 0x26c bytes, file has 0x240"
        );
        let e = SetupHeader::parse(&d[..0x1f0]).unwrap_err().to_string();
        assert_eq!(
            e,
            "truncated setup header: needs 0x26c bytes, file has 0x1f0"
        );
    }
}
