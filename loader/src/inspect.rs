//! `inspect`: every way an image can be booted, from its headers and notes.
//!
//! For a bzImage the compressed payload is decoded as a stream only as far as the inner ELF's
//! program headers and PT_NOTE segments: the whole kernel is never held in memory, and
//! decoding never goes past the size the payload's trailer declares.

use std::io::{self, Read, Seek, SeekFrom};

use elfnote::{
    ByteOrder, ElfImage, ElfLayout, NoteCollector, NoteError, NoteLocation, Notes, OtherNote,
    XenGuest, XenNote,
};
use serde::Serialize;

use crate::bzimage::{self, ENTRY64_OFFSET, SetupError, SetupHeader};
use crate::multiboot::{Multiboot2Header, MultibootHeader};
use crate::payload::{Compression, PayloadError, PayloadReader};

/// Version of the JSON document [`Report`] serializes to. Additive changes keep it; a removed
/// or re-typed key bumps it.
pub const SCHEMA_VERSION: u32 = 1;
/// Largest image read whole (ELF images); bzImages are streamed.
pub const MAX_IMAGE: u64 = 1 << 30;
/// Leading bytes read to classify an image (covers 255 setup sectors and the multiboot areas).
pub const HEAD_LEN: usize = 0x21000;
/// How far `inspect` decompresses a bzImage payload looking for the inner vmlinux's notes,
/// whatever the trailer declares: notes sit near the start of a vmlinux (Debian's 6.1 kernels:
/// within the first 2 MiB of 40–70 MiB), so a payload that hides them deeper is refused rather
/// than decompressed for minutes.
pub const INSPECT_DECOMPRESS_BOUND: u64 = 256 << 20;

/// Errors of inspection. Display strings name the offset and the rule broken; the CLI prefixes
/// the file name.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// Nothing to read.
    #[error("empty file")]
    Empty,
    /// The image cannot be read.
    #[error("cannot read the image")]
    Io(#[from] io::Error),
    /// No format we know.
    #[error("{0}")]
    Unrecognised(String),
    /// Bigger than we read whole.
    #[error("image is {size:#x} bytes, over the {limit:#x}-byte limit for ELF images")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A bad setup header.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// A bad ELF image or note.
    #[error(transparent)]
    Elf(#[from] NoteError),
    /// The payload's magic is no compression we know.
    #[error("unknown payload magic {magic} at offset {offset:#x}")]
    UnknownPayload {
        /// The first bytes, as hex.
        magic: String,
        /// File offset of the payload.
        offset: u64,
    },
    /// The payload cannot be decoded.
    #[error("{compression} payload at offset {offset:#x}")]
    Payload {
        /// The format.
        compression: Compression,
        /// File offset of the payload.
        offset: u64,
        /// The decoder's complaint.
        #[source]
        source: PayloadError,
    },
    /// The payload decoded with an error partway. The source names the format and how far
    /// decoding got ([`PayloadError::Decode`] inside the I/O error).
    #[error("payload at file offset {offset:#x}")]
    Decode {
        /// File offset of the payload.
        offset: u64,
        /// The decoder's error.
        #[source]
        source: io::Error,
    },
    /// The inner ELF is broken.
    #[error("inner vmlinux (decompressed {compression} payload)")]
    Inner {
        /// The payload's format.
        compression: Compression,
        /// What is wrong with it.
        #[source]
        source: NoteError,
    },
    /// The decoded payload ends too early.
    #[error(
        "decompressed payload ends at {produced:#x} bytes, before the {what} at {needed:#x} (declared size {declared:#x})"
    )]
    ShortPayload {
        /// Bytes decoded.
        produced: u64,
        /// What was wanted.
        what: &'static str,
        /// Where it ends.
        needed: u64,
        /// The trailer's size.
        declared: u64,
    },
    /// Two PT_NOTE segments of the inner ELF overlap.
    #[error(
        "inner vmlinux {location} at {offset:#x} overlaps the previous note segment ending at {previous_end:#x}"
    )]
    OverlappingNotes {
        /// The segment.
        location: NoteLocation,
        /// Its offset.
        offset: u64,
        /// End of the previous one.
        previous_end: u64,
    },
    /// A structure of the inner ELF lies past the declared size.
    #[error(
        "inner vmlinux {what} at {offset:#x} with {size:#x} bytes lies past the declared decompressed size {declared:#x} (payload trailer)"
    )]
    BeyondDeclared {
        /// What.
        what: String,
        /// Its offset in the inner ELF.
        offset: u64,
        /// Its size.
        size: u64,
        /// The trailer's size.
        declared: u64,
    },
    /// A structure of the inner ELF lies past [`INSPECT_DECOMPRESS_BOUND`].
    #[error(
        "inner vmlinux {what} at {offset:#x} with {size:#x} bytes lies past the {bound:#x}-byte bound inspect decompresses to"
    )]
    BeyondBound {
        /// What.
        what: String,
        /// Its offset in the inner ELF.
        offset: u64,
        /// Its size.
        size: u64,
        /// [`INSPECT_DECOMPRESS_BOUND`].
        bound: u64,
    },
}

/// Image formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// An ELF executable (vmlinux, a NetBSD/FreeBSD kernel, a unikernel).
    Elf,
    /// A Linux bzImage (setup header + compressed payload).
    Bzimage,
    /// A flat binary with a multiboot v1 a.out-kludge header.
    Multiboot,
    /// A flat binary with only a multiboot2 header (reported, not booted).
    Multiboot2,
}

impl Format {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Format::Elf => "elf",
            Format::Bzimage => "bzimage",
            Format::Multiboot => "multiboot",
            Format::Multiboot2 => "multiboot2",
        }
    }
}

/// Boot protocols an entry point belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// Xen PVH: 32-bit protected mode, `hvm_start_info` in EBX.
    Pvh,
    /// Linux boot protocol, 64-bit entry.
    Linux64,
    /// Linux boot protocol, 32-bit entry.
    Linux32,
    /// Multiboot v1.
    Multiboot,
    /// The ELF header's `e_entry`.
    Elf,
}

/// One way into the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryPoint {
    /// The protocol.
    pub protocol: EntryKind,
    /// The address: physical, or an offset from the load address when `relative` is true.
    pub address: u64,
    /// `address` is an offset from wherever the kernel is loaded.
    pub relative: bool,
    /// Where the address comes from.
    pub source: String,
}

/// What the bzImage header and payload say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BzReport {
    /// Boot protocol version, e.g. `"2.15"`.
    pub protocol: String,
    /// `loadflags` bit names.
    pub loadflags: Vec<String>,
    /// `xloadflags` bit names.
    pub xloadflags: Vec<String>,
    /// The kernel version string.
    pub kernel_version: Option<String>,
    /// The file is also a PE image (EFI stub).
    pub efi_stub: bool,
    /// File offset of the PE header.
    pub pe_offset: Option<u32>,
    /// EFI handover entry offset (2.11+, when an XLF_EFI_HANDOVER flag is set).
    pub handover_offset: Option<u32>,
    /// Real-mode setup sectors (0 already read as 4).
    pub setup_sects: u32,
    /// File offset of the protected-mode code.
    pub protected_mode_offset: u64,
    /// `code32_start`.
    pub code32_start: u32,
    /// `init_size` (2.10+).
    pub init_size: Option<u32>,
    /// `pref_address` (2.10+).
    pub pref_address: Option<u64>,
    /// `kernel_alignment`.
    pub kernel_alignment: u32,
    /// `relocatable_kernel`.
    pub relocatable: bool,
    /// Longest command line without NUL.
    pub cmdline_size: u32,
    /// Highest address an initrd may occupy.
    pub initrd_addr_max: u32,
    /// Payload compression.
    pub compression: Option<Compression>,
    /// File offset of the payload.
    pub payload_offset: Option<u64>,
    /// Payload length including the 4-byte trailer.
    pub payload_length: Option<u32>,
    /// The uncompressed size the trailer declares.
    pub decompressed_size: Option<u32>,
    /// How many decompressed bytes inspect read to find the inner ELF's notes.
    pub decompressed_read: Option<u64>,
    /// Every raw setup-header field.
    pub header: SetupHeader,
}

/// Everything `inspect` learns about an image. Serialized, this is the `inspect --json`
/// document (`docs/inspect-json.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The image format.
    pub format: Format,
    /// File size in bytes.
    pub file_size: u64,
    /// ELF class (32/64), of the inner vmlinux for a bzImage.
    pub elf_class: Option<u8>,
    /// ELF byte order.
    pub elf_byte_order: Option<ByteOrder>,
    /// ELF machine, as readelf names it.
    pub elf_machine: Option<&'static str>,
    /// ELF `e_entry`.
    pub elf_entry: Option<u64>,
    /// PVH entry (XEN_ELFNOTE_PHYS32_ENTRY).
    pub pvh_entry: Option<u32>,
    /// GUEST_OS, from the Xen note or `__xen_guest`.
    pub guest_os: Option<String>,
    /// Every entry point, by protocol.
    pub entry_points: Vec<EntryPoint>,
    /// Xen notes in file order.
    pub xen_notes: Vec<XenNote>,
    /// Notes of other owners.
    pub other_notes: Vec<OtherNote>,
    /// The legacy `__xen_guest` string.
    pub xen_guest: Option<XenGuest>,
    /// GNU build-id (hex).
    pub build_id: Option<String>,
    /// Program headers of the ELF (inner ELF for a bzImage).
    pub segments: Vec<elfnote::Segment>,
    /// Where notes were found.
    pub note_locations: Vec<NoteLocation>,
    /// bzImage facts.
    pub bzimage: Option<BzReport>,
    /// The multiboot v1 header.
    pub multiboot: Option<MultibootHeader>,
    /// A multiboot2 header (not bootable by anyboot).
    pub multiboot2: Option<Multiboot2Header>,
}

fn read_head<R: Read>(r: &mut R, max: usize) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(max.min(1 << 16));
    r.take(max as u64).read_to_end(&mut head)?;
    Ok(head)
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why an image is of no format we know, as precisely as its first bytes allow.
fn unrecognised(head: &[u8]) -> InspectError {
    let msg = if head.starts_with(&[0x1f, 0x8b]) {
        "gzip-compressed file at offset 0x0: decompress it first (e.g. zcat xen.gz > xen)"
            .to_owned()
    } else if head.starts_with(b"MZ") {
        "PE/COFF image without a Linux x86 setup header (\"HdrS\" missing at offset 0x202): not an x86 bzImage (an arm64/riscv Image or an EFI application?)".to_owned()
    } else {
        format!(
            "unrecognised kernel image: first bytes {} at offset 0x0 are no ELF magic, no Linux setup header (\"HdrS\" at 0x202) and no multiboot header in the first 8 KiB",
            hex(&head[..head.len().min(4)])
        )
    };
    InspectError::Unrecognised(msg)
}

/// Inspect the image at `path`.
pub fn inspect_path(path: &std::path::Path) -> Result<Report, InspectError> {
    let mut f = std::fs::File::open(path)?;
    inspect(&mut f)
}

/// Inspect an image read from `r`.
pub fn inspect<R: Read + Seek>(r: &mut R) -> Result<Report, InspectError> {
    let head = read_head(r, HEAD_LEN)?;
    if head.is_empty() {
        return Err(InspectError::Empty);
    }
    let file_size = if head.len() < HEAD_LEN {
        head.len() as u64
    } else {
        r.seek(SeekFrom::End(0))?
    };
    let multiboot = MultibootHeader::find(&head);
    let multiboot2 = Multiboot2Header::find(&head);

    if SetupHeader::detect(&head) || (head.starts_with(b"MZ") && head.len() < 0x206) {
        let (bz, inner) = inspect_bzimage(r, &head, file_size)?;
        return Ok(build_report(
            Format::Bzimage,
            file_size,
            inner,
            Some(bz),
            multiboot,
            multiboot2,
        ));
    }
    if head.starts_with(b"\x7fELF") {
        if file_size > MAX_IMAGE {
            return Err(InspectError::TooLarge {
                size: file_size,
                limit: MAX_IMAGE,
            });
        }
        let data = if head.len() as u64 == file_size {
            head
        } else {
            r.seek(SeekFrom::Start(0))?;
            read_head(r, usize::try_from(file_size).unwrap_or(usize::MAX))?
        };
        let img = elfnote::read_elf(&data)?;
        return Ok(build_report(
            Format::Elf,
            file_size,
            Some((img.layout, img.notes)),
            None,
            multiboot,
            multiboot2,
        ));
    }
    if multiboot.is_some() {
        return Ok(build_report(
            Format::Multiboot,
            file_size,
            None,
            None,
            multiboot,
            multiboot2,
        ));
    }
    if multiboot2.is_some() {
        return Ok(build_report(
            Format::Multiboot2,
            file_size,
            None,
            None,
            None,
            multiboot2,
        ));
    }
    Err(unrecognised(&head))
}

fn build_report(
    format: Format,
    file_size: u64,
    elf: Option<(ElfLayout, Notes)>,
    bzimage: Option<BzReport>,
    multiboot: Option<MultibootHeader>,
    multiboot2: Option<Multiboot2Header>,
) -> Report {
    let mut entry_points = Vec::new();
    let (layout, notes) = match elf {
        Some((l, n)) => (Some(l), n),
        None => (None, Notes::default()),
    };
    let in_bz = if bzimage.is_some() {
        "inner vmlinux "
    } else {
        ""
    };
    if let Some(e) = notes.pvh_entry() {
        let size = notes
            .xen_note(elfnote::XEN_ELFNOTE_PHYS32_ENTRY)
            .map_or(0, |n| n.desc_size);
        entry_points.push(EntryPoint {
            protocol: EntryKind::Pvh,
            address: u64::from(e),
            relative: false,
            source: format!("{in_bz}XEN_ELFNOTE_PHYS32_ENTRY ({size}-byte note)"),
        });
    }
    if let Some(bz) = &bzimage {
        if bz.header.has_entry64() {
            entry_points.push(EntryPoint {
                protocol: EntryKind::Linux64,
                address: ENTRY64_OFFSET,
                relative: true,
                source: format!(
                    "boot protocol {} with XLF_KERNEL_64: load address + 0x200",
                    bz.protocol
                ),
            });
        }
        if bz.header.loaded_high() {
            entry_points.push(EntryPoint {
                protocol: EntryKind::Linux32,
                address: 0,
                relative: true,
                source: format!("load address (code32_start {:#x})", bz.code32_start),
            });
        }
    } else if let Some(l) = &layout {
        // A vmlinux can be entered at e_entry with a zero page (Firecracker's ELF boot).
        let linux =
            notes.guest_os() == Some("linux") || notes.other.iter().any(|n| n.owner == "Linux");
        if linux && l.header.machine == 62 {
            entry_points.push(EntryPoint {
                protocol: EntryKind::Linux64,
                address: l.header.entry,
                relative: false,
                source: "ELF e_entry of a Linux vmlinux, with a zero page (no setup header)".into(),
            });
        }
    }
    if let Some(mb) = &multiboot {
        if let Some(k) = &mb.aout_kludge {
            entry_points.push(EntryPoint {
                protocol: EntryKind::Multiboot,
                address: u64::from(k.entry_addr),
                relative: false,
                source: format!(
                    "multiboot a.out-kludge entry_addr (header at {:#x})",
                    mb.offset
                ),
            });
        } else if let Some(l) = &layout {
            entry_points.push(EntryPoint {
                protocol: EntryKind::Multiboot,
                address: l.header.entry,
                relative: false,
                source: format!("ELF e_entry, multiboot header at {:#x}", mb.offset),
            });
        }
    }
    if let Some(l) = &layout {
        entry_points.push(EntryPoint {
            protocol: EntryKind::Elf,
            address: l.header.entry,
            relative: false,
            source: format!("{in_bz}ELF header e_entry"),
        });
    }
    Report {
        schema_version: SCHEMA_VERSION,
        format,
        file_size,
        elf_class: layout.as_ref().map(|l| l.header.class.bits()),
        elf_byte_order: layout.as_ref().map(|l| l.header.byte_order),
        elf_machine: layout.as_ref().map(|l| l.header.machine_name()),
        elf_entry: layout.as_ref().map(|l| l.header.entry),
        pvh_entry: notes.pvh_entry(),
        guest_os: notes.guest_os().map(str::to_owned),
        entry_points,
        build_id: notes.build_id().map(str::to_owned),
        xen_notes: notes.xen,
        other_notes: notes.other,
        xen_guest: notes.xen_guest,
        segments: layout.map(|l| l.segments).unwrap_or_default(),
        note_locations: notes.locations,
        bzimage,
        multiboot,
        multiboot2,
    }
}

fn inspect_bzimage<R: Read + Seek>(
    r: &mut R,
    head: &[u8],
    file_size: u64,
) -> Result<(BzReport, Option<(ElfLayout, Notes)>), InspectError> {
    let h = SetupHeader::parse(head)?;
    let pe_offset = bzimage::pe_header_offset(head);
    let xl = h.xloadflags();
    let mut bz = BzReport {
        protocol: h.protocol(),
        loadflags: h.loadflag_names(),
        xloadflags: h.xloadflag_names(),
        kernel_version: bzimage::kernel_version_string(&h, head),
        efi_stub: pe_offset.is_some(),
        pe_offset,
        handover_offset: (h.at_least(2, 11) && xl & 0b1100 != 0).then_some(h.handover_offset),
        setup_sects: h.setup_sectors(),
        protected_mode_offset: h.protected_mode_offset(),
        code32_start: h.code32_start,
        init_size: h.at_least(2, 10).then_some(h.init_size),
        pref_address: h.at_least(2, 10).then_some(h.pref_address),
        kernel_alignment: h.kernel_alignment,
        relocatable: h.relocatable_kernel != 0,
        cmdline_size: h.cmdline_size(),
        initrd_addr_max: h.initrd_addr_max(),
        compression: None,
        payload_offset: None,
        payload_length: None,
        decompressed_size: None,
        decompressed_read: None,
        header: h,
    };
    let Some((offset, length)) = h.payload_range(file_size)? else {
        return Ok((bz, None));
    };
    bz.payload_offset = Some(offset);
    bz.payload_length = Some(length);

    r.seek(SeekFrom::Start(offset))?;
    let mut magic = [0u8; 16];
    let got = read_head(r, 16)?;
    magic[..got.len()].copy_from_slice(&got);
    let Some(compression) = Compression::detect(&got) else {
        return Err(InspectError::UnknownPayload {
            magic: hex(&got[..got.len().min(4)]),
            offset,
        });
    };
    bz.compression = Some(compression);
    r.seek(SeekFrom::Start(offset + u64::from(length) - 4))?;
    let mut trailer = [0u8; 4];
    r.read_exact(&mut trailer)?;
    let declared = u32::from_le_bytes(trailer);
    bz.decompressed_size = Some(declared);

    let limit = u64::from(declared).min(INSPECT_DECOMPRESS_BOUND);
    let mut dec = PayloadReader::at(r, offset, length, compression, limit).map_err(|source| {
        InspectError::Payload {
            compression,
            offset,
            source,
        }
    })?;
    let inner = read_inner_elf(&mut dec, u64::from(declared), offset)?;
    bz.decompressed_read = Some(dec.produced());
    Ok((bz, Some((inner.layout, inner.notes))))
}

/// Read exactly `n` more bytes from the stream into `buf`, or say what was missing.
fn fill(
    dec: &mut PayloadReader<'_>,
    buf: &mut Vec<u8>,
    want: u64,
    what: &'static str,
    declared: u64,
    offset: u64,
) -> Result<(), InspectError> {
    let need = want.saturating_sub(buf.len() as u64);
    let got = dec
        .by_ref()
        .take(need)
        .read_to_end(buf)
        .map_err(|source| InspectError::Decode { offset, source })?;
    if (got as u64) < need {
        return Err(InspectError::ShortPayload {
            produced: dec.produced(),
            what,
            needed: want,
            declared,
        });
    }
    Ok(())
}

/// Stream the decompressed payload: the ELF header, the program header table, then each
/// PT_NOTE segment in file order, skipping (not storing) everything between.
fn read_inner_elf(
    dec: &mut PayloadReader<'_>,
    declared: u64,
    offset: u64,
) -> Result<ElfImage, InspectError> {
    let compression = dec.compression();
    let inner = |source| InspectError::Inner {
        compression,
        source,
    };
    let mut head = Vec::new();
    fill(
        dec,
        &mut head,
        64.min(declared),
        "ELF header",
        declared,
        offset,
    )?;
    let hlen = ElfLayout::headers_len(&head).map_err(inner)?;
    if hlen > INSPECT_DECOMPRESS_BOUND {
        return Err(InspectError::BeyondBound {
            what: "program header table".into(),
            offset: 0,
            size: hlen,
            bound: INSPECT_DECOMPRESS_BOUND,
        });
    }
    if hlen > declared {
        return Err(InspectError::BeyondDeclared {
            what: "program header table".into(),
            offset: 0,
            size: hlen,
            declared,
        });
    }
    fill(
        dec,
        &mut head,
        hlen,
        "program header table",
        declared,
        offset,
    )?;
    let layout = ElfLayout::parse(&head).map_err(inner)?;
    let mut collector = NoteCollector::new(&layout);
    let mut pos = head.len() as u64;
    for seg in layout.note_segments() {
        let location = NoteLocation::Segment { index: seg.index };
        let end = seg
            .offset
            .checked_add(seg.filesz)
            .filter(|e| *e <= declared);
        if end.is_none() {
            return Err(InspectError::BeyondDeclared {
                what: format!("PT_NOTE segment {}", seg.index),
                offset: seg.offset,
                size: seg.filesz,
                declared,
            });
        }
        if end.is_some_and(|e| e > INSPECT_DECOMPRESS_BOUND) {
            return Err(InspectError::BeyondBound {
                what: format!("PT_NOTE segment {}", seg.index),
                offset: seg.offset,
                size: seg.filesz,
                bound: INSPECT_DECOMPRESS_BOUND,
            });
        }
        if seg.filesz > elfnote::MAX_NOTE_BLOB {
            return Err(inner(NoteError::TooLarge {
                what: "PT_NOTE segment",
                offset: seg.offset,
                size: seg.filesz,
                limit: elfnote::MAX_NOTE_BLOB,
            }));
        }
        let mut blob = Vec::new();
        if let Some(inside) = usize::try_from(seg.offset)
            .ok()
            .zip(usize::try_from(seg.filesz).ok())
            .and_then(|(o, n)| head.get(o..o.checked_add(n)?))
        {
            // Inside the headers we already hold.
            blob.extend_from_slice(inside);
        } else {
            if seg.offset < pos {
                // Overlaps a segment already consumed: a stream cannot go back.
                return Err(InspectError::OverlappingNotes {
                    location,
                    offset: seg.offset,
                    previous_end: pos,
                });
            }
            let skip = seg.offset - pos;
            let skipped = io::copy(&mut dec.by_ref().take(skip), &mut io::sink())
                .map_err(|source| InspectError::Decode { offset, source })?;
            if skipped < skip {
                return Err(InspectError::ShortPayload {
                    produced: dec.produced(),
                    what: "PT_NOTE segment",
                    needed: seg.offset,
                    declared,
                });
            }
            fill(
                dec,
                &mut blob,
                seg.filesz,
                "PT_NOTE segment",
                declared,
                offset,
            )?;
            pos = seg.offset + seg.filesz;
        }
        collector
            .add(location, seg.offset, seg.align, &blob)
            .map_err(inner)?;
    }
    Ok(ElfImage {
        notes: collector.finish(),
        layout,
    })
}
