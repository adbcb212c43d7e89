//! Read the ELF notes that tell how a kernel can be booted.
//!
//! `elfnote` reads ELF32 and ELF64 images of either byte order with the `object` crate, walks
//! every `PT_NOTE` segment and every `SHT_NOTE` section (a note seen in both is reported once),
//! and decodes:
//! - every Xen note, types 0–19, into a typed value ([`XenNote`], [`XenValue`]); the presence of
//!   `XEN_ELFNOTE_PHYS32_ENTRY` makes the image PVH-bootable ([`Notes::pvh_entry`]);
//! - the legacy `__xen_guest` section of Xen PV kernels ([`XenGuest`]);
//! - the GNU build-id and the Linux notes ([`OtherNote`]).
//!
//! It also works on a partial image, as a streaming reader gets it from a compressed bzImage
//! payload: [`ElfLayout::headers_len`] says how many leading bytes hold the file and program
//! headers, [`ElfLayout::parse`] reads them, and a [`NoteCollector`] takes the note segments one
//! at a time. Nothing here does I/O.
//!
//! ```
//! # fn main() -> Result<(), elfnote::NoteError> {
//! # let image = anyboot_fixtures::pvh_elf(&anyboot_fixtures::PvhSpec::default());
//! let elf = elfnote::read_elf(&image)?;
//! if let Some(entry) = elf.notes.pvh_entry() {
//!     println!("PVH entry at {entry:#x}");
//! }
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod guest;
mod other;
mod xen;

use std::collections::BTreeSet;

use object::Endianness;
use object::elf::{FileHeader32, FileHeader64, PT_LOAD, PT_NOTE, SHT_NOTE};
use object::read::elf::{FileHeader, NoteIterator, ProgramHeader, SectionHeader};
use serde::Serialize;

pub use guest::{GuestEntry, SECTION_NAME as XEN_GUEST_SECTION, XenGuest};
pub use other::{NT_GNU_BUILD_ID, OtherNote};
pub use xen::{
    FEATURE_NAMES, Feature, MaskValue, Phys32Reloc, XEN_ELFNOTE_PHYS32_ENTRY,
    XEN_ELFNOTE_PHYS32_RELOC, XEN_OWNER, XenNote, XenValue, note_name,
};

/// Largest note segment or section we read (the notes of real kernels take a few hundred bytes).
pub const MAX_NOTE_BLOB: u64 = 1 << 20;
/// Largest program header table we read.
pub const MAX_PHDR_TABLE: u64 = 1 << 20;

/// Errors from reading an ELF image's headers and notes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// The bytes do not start with an ELF header we can read.
    #[error("not an ELF image: {reason}")]
    NotElf {
        /// What is wrong.
        reason: String,
    },
    /// The file header or a header table is inconsistent.
    #[error("invalid ELF {what}")]
    Header {
        /// Which header.
        what: &'static str,
        /// The reader's complaint.
        #[source]
        source: object::Error,
    },
    /// A note record does not fit its segment or section.
    #[error("malformed ELF note in {location} at offset {offset:#x}")]
    Malformed {
        /// The segment or section holding it.
        location: NoteLocation,
        /// File offset of the record.
        offset: u64,
        /// The reader's complaint.
        #[source]
        source: object::Error,
    },
    /// A Xen note whose descriptor breaks its type's rule.
    #[error(
        "Xen note {name} (type {n_type}) at offset {offset:#x} has a {size}-byte descriptor: {rule}"
    )]
    BadXenNote {
        /// Xen's name for the type.
        name: &'static str,
        /// The note type.
        n_type: u32,
        /// File offset of the note header.
        offset: u64,
        /// Descriptor size.
        size: usize,
        /// The rule broken.
        rule: &'static str,
    },
    /// A note segment that extends past the end of the file.
    #[error(
        "{location} at offset {offset:#x} with {size:#x} bytes extends past the end of the file ({file_len:#x} bytes)"
    )]
    OutOfFile {
        /// The segment.
        location: NoteLocation,
        /// Its file offset.
        offset: u64,
        /// Its size.
        size: u64,
        /// The file's size.
        file_len: u64,
    },
    /// A header table or note area larger than any real kernel's.
    #[error("{what} at offset {offset:#x} is {size:#x} bytes, over the {limit:#x}-byte limit")]
    TooLarge {
        /// What is too large.
        what: &'static str,
        /// Its file offset.
        offset: u64,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
}

/// ELF class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfClass {
    /// ELFCLASS32.
    Elf32,
    /// ELFCLASS64.
    Elf64,
}

impl ElfClass {
    /// 32 or 64.
    pub fn bits(self) -> u8 {
        match self {
            ElfClass::Elf32 => 32,
            ElfClass::Elf64 => 64,
        }
    }
}

impl Serialize for ElfClass {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.bits())
    }
}

/// Byte order of the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ByteOrder {
    /// ELFDATA2LSB.
    Little,
    /// ELFDATA2MSB.
    Big,
}

/// The ELF file header fields a boot loader cares about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ElfHeader {
    /// 32 or 64.
    pub class: ElfClass,
    /// Byte order.
    pub byte_order: ByteOrder,
    /// `e_machine`.
    pub machine: u16,
    /// `e_type` (2 = ET_EXEC).
    pub file_type: u16,
    /// `e_entry`.
    pub entry: u64,
    /// `e_phoff`.
    pub phoff: u64,
    /// Number of program headers.
    pub phnum: u32,
}

impl ElfHeader {
    /// A short name for `e_machine` as readelf spells it (`"x86-64"`, `"i386"`, ...).
    pub fn machine_name(&self) -> &'static str {
        match self.machine {
            3 => "i386",
            8 => "mips",
            20 => "ppc",
            21 => "ppc64",
            22 => "s390",
            40 => "arm",
            43 => "sparcv9",
            62 => "x86-64",
            183 => "aarch64",
            243 => "riscv",
            258 => "loongarch",
            _ => "unknown",
        }
    }
}

/// A program header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Segment {
    /// Index in the program header table.
    pub index: usize,
    /// `p_type` (1 = PT_LOAD, 4 = PT_NOTE).
    pub p_type: u32,
    /// `p_flags`.
    pub flags: u32,
    /// `p_offset`.
    pub offset: u64,
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_paddr`.
    pub paddr: u64,
    /// `p_filesz`.
    pub filesz: u64,
    /// `p_memsz`.
    pub memsz: u64,
    /// `p_align`.
    pub align: u64,
}

impl Segment {
    /// A PT_LOAD segment.
    pub fn is_load(&self) -> bool {
        self.p_type == PT_LOAD.0
    }
    /// A PT_NOTE segment.
    pub fn is_note(&self) -> bool {
        self.p_type == PT_NOTE.0
    }
}

/// The file header and program headers of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ElfLayout {
    /// The file header.
    pub header: ElfHeader,
    /// The program headers, in table order.
    pub segments: Vec<Segment>,
}

/// Where a note was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NoteLocation {
    /// A PT_NOTE segment, by program header index.
    Segment {
        /// Program header index.
        index: usize,
    },
    /// A SHT_NOTE section, by section index and name.
    Section {
        /// Section index.
        index: usize,
        /// Section name.
        name: String,
    },
}

impl std::fmt::Display for NoteLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoteLocation::Segment { index } => write!(f, "PT_NOTE segment {index}"),
            // The name comes from the file: escaped, so a hostile name cannot break the line.
            NoteLocation::Section { index, name } => write!(f, "section {index} ({name:?})"),
        }
    }
}

/// All notes of an image, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Notes {
    /// Xen notes in file order (owner `"Xen"` only).
    pub xen: Vec<XenNote>,
    /// Notes of other owners (GNU, Linux, ...), in file order.
    pub other: Vec<OtherNote>,
    /// The legacy `__xen_guest` section, if present.
    pub xen_guest: Option<XenGuest>,
    /// Segments and sections that held notes.
    pub locations: Vec<NoteLocation>,
}

impl Notes {
    /// The last Xen note of type `n_type` (as in Xen, a later note overrides an earlier one).
    pub fn xen_note(&self, n_type: u32) -> Option<&XenNote> {
        self.xen.iter().rev().find(|n| n.n_type == n_type)
    }

    /// The PVH entry point (`XEN_ELFNOTE_PHYS32_ENTRY`), if the image has one.
    pub fn pvh_entry(&self) -> Option<u32> {
        self.xen_note(XEN_ELFNOTE_PHYS32_ENTRY)
            .and_then(XenNote::phys32_entry)
    }

    /// A Xen string note's text.
    pub fn xen_text(&self, n_type: u32) -> Option<&str> {
        match &self.xen_note(n_type)?.value {
            XenValue::Text(s) => Some(s),
            _ => None,
        }
    }

    /// GUEST_OS from the Xen note (type 6) or else from `__xen_guest`.
    pub fn guest_os(&self) -> Option<&str> {
        self.xen_text(6)
            .or_else(|| self.xen_guest.as_ref().and_then(|g| g.get("GUEST_OS")))
    }

    /// The GNU build-id as lower-case hex.
    pub fn build_id(&self) -> Option<&str> {
        self.other
            .iter()
            .find(|n| n.owner == "GNU" && n.n_type == NT_GNU_BUILD_ID)
            .map(|n| n.desc.as_str())
    }

    /// True when the image carries Xen PV notes (or `__xen_guest`) beyond PHYS32_ENTRY/RELOC.
    pub fn has_xen_pv(&self) -> bool {
        self.xen_guest.is_some()
            || self.xen.iter().any(|n| {
                n.n_type != XEN_ELFNOTE_PHYS32_ENTRY && n.n_type != XEN_ELFNOTE_PHYS32_RELOC
            })
    }
}

/// An ELF image's layout and notes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ElfImage {
    /// File and program headers.
    pub layout: ElfLayout,
    /// The notes.
    pub notes: Notes,
}

const EHDR32: usize = 52;
const EHDR64: usize = 64;

fn ident(data: &[u8]) -> Result<(ElfClass, usize), NoteError> {
    if data.len() < 4 || &data[..4] != b"\x7fELF" {
        return Err(NoteError::NotElf {
            reason: "no ELF magic (7f 45 4c 46) at offset 0".into(),
        });
    }
    let (class, need) = match data.get(4) {
        Some(1) => (ElfClass::Elf32, EHDR32),
        Some(2) => (ElfClass::Elf64, EHDR64),
        Some(c) => {
            return Err(NoteError::NotElf {
                reason: format!("EI_CLASS at offset 0x4 is {c}, not 1 (ELF32) or 2 (ELF64)"),
            });
        }
        None => {
            return Err(NoteError::NotElf {
                reason: format!(
                    "truncated ELF header: needs 0x5 bytes, has {:#x}",
                    data.len()
                ),
            });
        }
    };
    if data.len() < need {
        return Err(NoteError::NotElf {
            reason: format!(
                "truncated ELF header: needs {need:#x} bytes, has {:#x}",
                data.len()
            ),
        });
    }
    Ok((class, need))
}

fn header_err(what: &'static str) -> impl FnOnce(object::Error) -> NoteError {
    move |source| NoteError::Header { what, source }
}

fn parse_header<Elf: FileHeader<Endian = Endianness>>(
    data: &[u8],
) -> Result<(&Elf, Endianness), NoteError> {
    let hdr = Elf::parse(data).map_err(header_err("file header"))?;
    let endian = hdr.endian().map_err(header_err("file header"))?;
    Ok((hdr, endian))
}

fn layout_of<Elf: FileHeader<Endian = Endianness>>(
    data: &[u8],
    class: ElfClass,
) -> Result<ElfLayout, NoteError> {
    let (hdr, endian) = parse_header::<Elf>(data)?;
    let phdrs = hdr
        .program_headers(endian, data)
        .map_err(header_err("program header table"))?;
    let segments = phdrs
        .iter()
        .enumerate()
        .map(|(index, p)| Segment {
            index,
            p_type: p.p_type(endian).0,
            flags: p.p_flags(endian).0,
            offset: p.p_offset(endian).into(),
            vaddr: p.p_vaddr(endian).into(),
            paddr: p.p_paddr(endian).into(),
            filesz: p.p_filesz(endian).into(),
            memsz: p.p_memsz(endian).into(),
            align: p.p_align(endian).into(),
        })
        .collect();
    let header = ElfHeader {
        class,
        byte_order: if endian == Endianness::Little {
            ByteOrder::Little
        } else {
            ByteOrder::Big
        },
        machine: hdr.e_machine(endian).0,
        file_type: hdr.e_type(endian).0,
        entry: hdr.e_entry(endian).into(),
        phoff: hdr.e_phoff(endian).into(),
        phnum: u32::try_from(phdrs.len()).unwrap_or(u32::MAX),
    };
    Ok(ElfLayout { header, segments })
}

impl ElfLayout {
    /// How many leading bytes of the image hold the file header and the program header table.
    /// `head` needs only the file header (52 or 64 bytes).
    pub fn headers_len(head: &[u8]) -> Result<u64, NoteError> {
        let (class, ehdr) = ident(head)?;
        let head = &head[..ehdr];
        let (phoff, phnum, phentsize): (u64, u64, u64) = match class {
            ElfClass::Elf32 => {
                let (h, e) = parse_header::<FileHeader32<Endianness>>(head)?;
                (
                    h.e_phoff(e).into(),
                    h.e_phnum(e).into(),
                    h.e_phentsize(e).into(),
                )
            }
            ElfClass::Elf64 => {
                let (h, e) = parse_header::<FileHeader64<Endianness>>(head)?;
                (h.e_phoff(e), h.e_phnum(e).into(), h.e_phentsize(e).into())
            }
        };
        let table = phnum * phentsize;
        if table > MAX_PHDR_TABLE {
            return Err(NoteError::TooLarge {
                what: "program header table",
                offset: phoff,
                size: table,
                limit: MAX_PHDR_TABLE,
            });
        }
        let end = phoff.checked_add(table).ok_or_else(|| NoteError::NotElf {
            reason: format!("e_phoff {phoff:#x} plus the table size overflows"),
        })?;
        Ok(end.max(ehdr as u64))
    }

    /// Read the file header and program headers; `data` must cover [`Self::headers_len`] bytes.
    pub fn parse(data: &[u8]) -> Result<ElfLayout, NoteError> {
        let (class, _) = ident(data)?;
        match class {
            ElfClass::Elf32 => layout_of::<FileHeader32<Endianness>>(data, class),
            ElfClass::Elf64 => layout_of::<FileHeader64<Endianness>>(data, class),
        }
    }

    /// Largest `p_align` among PT_LOAD segments.
    pub fn max_load_align(&self) -> u64 {
        self.segments
            .iter()
            .filter(|s| s.is_load())
            .map(|s| s.align)
            .max()
            .unwrap_or(0)
    }

    /// The PT_NOTE segments a loader reads, sorted by file offset. Like Xen's libelf we skip a
    /// PT_NOTE whose `p_offset` is 0 (an old binutils bug produced those).
    pub fn note_segments(&self) -> Vec<&Segment> {
        let mut v: Vec<&Segment> = self
            .segments
            .iter()
            .filter(|s| s.is_note() && s.offset != 0 && s.filesz != 0)
            .collect();
        v.sort_by_key(|s| s.offset);
        v
    }
}

/// Collects and decodes notes from note areas handed over one at a time.
#[derive(Debug)]
pub struct NoteCollector {
    ctx: xen::Context,
    seen: BTreeSet<u64>,
    notes: Notes,
}

impl NoteCollector {
    /// A collector for an image with this layout.
    pub fn new(layout: &ElfLayout) -> NoteCollector {
        NoteCollector {
            ctx: xen::Context {
                class: layout.header.class,
                order: layout.header.byte_order,
                max_load_align: layout.max_load_align(),
            },
            seen: BTreeSet::new(),
            notes: Notes::default(),
        }
    }

    /// Decode the notes in `data`, which starts at `file_offset` of the image and comes from
    /// `location` with alignment `align` (`p_align` or `sh_addralign`: 8 means 8-byte padding,
    /// anything up to 4 means 4, as binutils reads them). A note already seen at the same file
    /// offset (a section inside a segment) is skipped.
    pub fn add(
        &mut self,
        location: NoteLocation,
        file_offset: u64,
        align: u64,
        data: &[u8],
    ) -> Result<(), NoteError> {
        if data.len() as u64 > MAX_NOTE_BLOB {
            return Err(NoteError::TooLarge {
                what: "note area",
                offset: file_offset,
                size: data.len() as u64,
                limit: MAX_NOTE_BLOB,
            });
        }
        let malformed = |offset, source| NoteError::Malformed {
            location: location.clone(),
            offset,
            source,
        };
        let align = if align == 8 { 8 } else { 4 };
        let mut iter = NoteIterator::<FileHeader64<Endianness>>::new(self.endian(), align, data)
            .map_err(|e| malformed(file_offset, e))?;
        let base = data.as_ptr() as usize;
        // File offset of the next record, to name the one that fails.
        let mut next = file_offset;
        let mut any = false;
        loop {
            let note = match iter.next() {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(e) => {
                    // Xen's libelf reads string notes up to their NUL even when the descriptor
                    // runs past the note area (GRUB's i386-xen image ends with such a PAE_MODE
                    // note); accept exactly that case, flagged, and nothing else.
                    let rel = usize::try_from(next - file_offset).unwrap_or(usize::MAX);
                    match self.salvage_truncated_string(data.get(rel..).unwrap_or(&[]), next)? {
                        true => {
                            any = true;
                            break;
                        }
                        false => return Err(malformed(next, e)),
                    }
                }
            };
            // The name follows the 12-byte record header.
            let rel = (note.name_bytes().as_ptr() as usize - base) as u64 - 12;
            let offset = file_offset + rel;
            let desc_end = (note.desc().as_ptr() as usize - base + note.desc().len()) as u64;
            next = file_offset + desc_end.next_multiple_of(align);
            any = true;
            if !self.seen.insert(offset) {
                continue;
            }
            let endian = self.endian();
            let n_type = note.n_type(endian).0;
            if note.name() == XEN_OWNER.as_bytes() {
                let x = xen::decode(&self.ctx, n_type, note.desc(), offset)?;
                self.notes.xen.push(x);
            } else {
                self.notes.other.push(OtherNote::new(
                    note.name(),
                    n_type,
                    note.desc(),
                    offset,
                    self.ctx.order,
                ));
            }
        }
        if any && !self.notes.locations.contains(&location) {
            self.notes.locations.push(location);
        }
        Ok(())
    }

    /// The last record of a note area, whose descriptor is cut short by the area's end: kept if
    /// it is a Xen string note whose NUL lies inside the bytes present. Returns whether it was.
    fn salvage_truncated_string(&mut self, rec: &[u8], offset: u64) -> Result<bool, NoteError> {
        let endian = self.endian();
        let word = |i: usize| -> Option<u32> {
            let b: [u8; 4] = rec.get(i * 4..i * 4 + 4)?.try_into().ok()?;
            Some(match endian {
                Endianness::Little => u32::from_le_bytes(b),
                Endianness::Big => u32::from_be_bytes(b),
            })
        };
        let (Some(namesz), Some(descsz), Some(n_type)) = (word(0), word(1), word(2)) else {
            return Ok(false);
        };
        let name_end = 12 + namesz as usize;
        if rec.get(12..name_end) != Some(&b"Xen\0"[..]) {
            return Ok(false);
        }
        let desc = &rec[name_end.next_multiple_of(4).min(rec.len())..];
        if desc.len() >= descsz as usize || !xen::is_string_note(n_type) || !desc.contains(&0) {
            return Ok(false);
        }
        if self.seen.insert(offset) {
            let mut note = xen::decode(&self.ctx, n_type, desc, offset)?;
            note.desc_size = descsz as usize;
            note.truncated = true;
            self.notes.xen.push(note);
        }
        Ok(true)
    }

    /// Record the `__xen_guest` section.
    pub fn add_xen_guest(&mut self, data: &[u8], file_offset: u64) {
        self.notes.xen_guest = Some(XenGuest::parse(data, file_offset));
    }

    /// The notes collected, with Xen and other notes each in file order.
    pub fn finish(mut self) -> Notes {
        self.notes.xen.sort_by_key(|n| n.offset);
        self.notes.other.sort_by_key(|n| n.offset);
        self.notes
    }

    fn endian(&self) -> Endianness {
        match self.ctx.order {
            ByteOrder::Little => Endianness::Little,
            ByteOrder::Big => Endianness::Big,
        }
    }
}

fn read_sections<Elf: FileHeader<Endian = Endianness>>(
    data: &[u8],
    collector: &mut NoteCollector,
) -> Result<(), NoteError> {
    let (hdr, endian) = parse_header::<Elf>(data)?;
    let table = hdr
        .sections(endian, data)
        .map_err(header_err("section header table"))?;
    for (index, section) in table.iter().enumerate() {
        let name = table
            .section_name(endian, section)
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default();
        let offset: u64 = section.sh_offset(endian).into();
        let is_guest = name == XEN_GUEST_SECTION;
        if section.sh_type(endian) != SHT_NOTE && !is_guest {
            continue;
        }
        let location = NoteLocation::Section { index, name };
        let bytes = section
            .data(endian, data)
            .map_err(|source| NoteError::Malformed {
                location: location.clone(),
                offset,
                source,
            })?;
        if is_guest {
            collector.add_xen_guest(bytes, offset);
        } else {
            let align: u64 = section.sh_addralign(endian).into();
            collector.add(location, offset, align, bytes)?;
        }
    }
    Ok(())
}

/// Read a whole ELF image: headers, every PT_NOTE segment, every SHT_NOTE section and the
/// `__xen_guest` section.
pub fn read_elf(data: &[u8]) -> Result<ElfImage, NoteError> {
    let layout = ElfLayout::parse(data)?;
    let mut collector = NoteCollector::new(&layout);
    for seg in layout.note_segments() {
        let location = NoteLocation::Segment { index: seg.index };
        let bytes = usize::try_from(seg.offset)
            .ok()
            .zip(usize::try_from(seg.filesz).ok())
            .and_then(|(o, n)| data.get(o..o.checked_add(n)?))
            .ok_or_else(|| NoteError::OutOfFile {
                location: location.clone(),
                offset: seg.offset,
                size: seg.filesz,
                file_len: data.len() as u64,
            })?;
        collector.add(location, seg.offset, seg.align, bytes)?;
    }
    match layout.header.class {
        ElfClass::Elf32 => read_sections::<FileHeader32<Endianness>>(data, &mut collector)?,
        ElfClass::Elf64 => read_sections::<FileHeader64<Endianness>>(data, &mut collector)?,
    }
    Ok(ElfImage {
        notes: collector.finish(),
        layout,
    })
}
