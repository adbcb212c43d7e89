//! What a direct loader writes into guest memory besides the kernel, and the CPU state the
//! kernel is entered with: the boot structures of the plan's protocol (PVH `hvm_start_info`,
//! the Linux zero page, the multiboot information), the boot GDT, TSS and IDT, the identity
//! page tables for a 64-bit entry, the command line and the MP table.
//!
//! Pure: [`prepare`] turns a [`BootPlan`] (plus, for a bzImage, the setup header bytes read
//! from the image) into a list of byte blobs with their guest addresses and an [`EntryState`].
//! The KVM backend copies the blobs, streams the kernel segments and modules from their files,
//! and loads the entry state into the boot vCPU. Nothing here knows about KVM.
//!
//! Hand-written rather than taken from `linux-loader`: that crate writes straight into a
//! `vm-memory` guest, only knows the Linux and PVH structures and not multiboot, and fixes its
//! own layout; anyboot's plan already decided every address (see [`crate::layout`]), so what is
//! left is encoding the ABI structures of [`crate::abi`], which is short and testable on its
//! own.

use std::mem::size_of;

use zerocopy::{FromBytes, IntoBytes};

use crate::abi::{linux, multiboot, xen};
use crate::layout::{self, Region, RegionKind};
use crate::plan::{BootPlan, Protocol};

/// CR0.PE: protected mode.
pub const CR0_PE: u64 = 1 << 0;
/// CR0.ET: extension type (always 1 on anything newer than a 386).
pub const CR0_ET: u64 = 1 << 4;
/// CR0.PG: paging.
pub const CR0_PG: u64 = 1 << 31;
/// CR4.PAE: physical address extension (required for long mode).
pub const CR4_PAE: u64 = 1 << 5;
/// EFER.LME: long mode enable.
pub const EFER_LME: u64 = 1 << 8;
/// EFER.LMA: long mode active.
pub const EFER_LMA: u64 = 1 << 10;
/// RFLAGS with only the reserved bit 1 set: interrupts off.
pub const RFLAGS_BOOT: u64 = 0x2;
/// The boot-loader name anyboot gives multiboot kernels.
pub const LOADER_NAME: &str = concat!("anyboot ", env!("CARGO_PKG_VERSION"));

const GDT_NULL: u64 = 0;
/// 32-bit code: base 0, limit 4 GiB, present, DPL 0, execute/read, accessed, D=1, G=1.
const GDT_CODE32: u64 = 0x00cf_9b00_0000_ffff;
/// 64-bit code: as above with L=1 and D=0.
const GDT_CODE64: u64 = 0x00af_9b00_0000_ffff;
/// Data: base 0, limit 4 GiB, present, DPL 0, read/write, accessed, D/B=1, G=1.
const GDT_DATA: u64 = 0x00cf_9300_0000_ffff;
/// The GDTR limit of the boot GDT.
#[allow(clippy::cast_possible_truncation)] // checked by the assertion
const GDT_LIMIT: u16 = {
    assert!(layout::GDT_SIZE - 1 <= u16::MAX as u64);
    (layout::GDT_SIZE - 1) as u16
};
/// A 104-byte TSS is 0x67 as a limit.
const TSS_LIMIT: u64 = 0x67;

/// A byte blob to copy into guest memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestWrite {
    /// What it is (for error messages and `--verbose`).
    pub what: &'static str,
    /// Guest-physical address.
    pub addr: u64,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// A segment register's hidden part, as the CPU caches it (what KVM_SET_SREGS takes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Segment {
    /// Selector.
    pub selector: u16,
    /// Base.
    pub base: u64,
    /// Limit in bytes (already scaled by the granularity bit).
    pub limit: u32,
    /// Type field (4 bits).
    pub type_: u8,
    /// Present.
    pub present: bool,
    /// Descriptor privilege level.
    pub dpl: u8,
    /// Default operation size / big (D/B).
    pub db: bool,
    /// Code or data (1) rather than system (0).
    pub s: bool,
    /// 64-bit code.
    pub l: bool,
    /// Granularity (limit in 4 KiB units in the descriptor).
    pub g: bool,
    /// Available-for-software bit.
    pub avl: bool,
}

impl Segment {
    /// Decode the low 8 bytes of a GDT descriptor into the cached form, with `selector`.
    /// One source of truth: the GDT written to memory and the registers the vCPU starts with
    /// come from the same descriptor values.
    pub fn from_descriptor(selector: u16, d: u64) -> Segment {
        let base = ((d >> 16) & 0xff_ffff) | (((d >> 56) & 0xff) << 24);
        let raw_limit = (d & 0xffff) | (((d >> 48) & 0xf) << 16);
        let g = (d >> 55) & 1 == 1;
        let limit = if g {
            (raw_limit << 12) | 0xfff
        } else {
            raw_limit
        };
        Segment {
            selector,
            base,
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
            type_: ((d >> 40) & 0xf) as u8,
            s: (d >> 44) & 1 == 1,
            dpl: ((d >> 45) & 3) as u8,
            present: (d >> 47) & 1 == 1,
            avl: (d >> 52) & 1 == 1,
            l: (d >> 53) & 1 == 1,
            db: (d >> 54) & 1 == 1,
            g,
        }
    }
}

/// A descriptor-table register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DescriptorTable {
    /// Base address.
    pub base: u64,
    /// Limit (size - 1).
    pub limit: u16,
}

/// The CPU mode at entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuMode {
    /// 32-bit protected mode, paging off (PVH, multiboot).
    Protected32,
    /// 64-bit long mode with identity paging (Linux 64-bit boot protocol).
    Long64,
}

/// The boot vCPU's state at the kernel's first instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryState {
    /// Mode.
    pub mode: CpuMode,
    /// Instruction pointer (the entry point).
    pub rip: u64,
    /// Stack pointer.
    pub rsp: u64,
    /// RAX (the multiboot magic).
    pub rax: u64,
    /// RBX (PVH `hvm_start_info`, multiboot information).
    pub rbx: u64,
    /// RSI (the Linux zero page).
    pub rsi: u64,
    /// RFLAGS.
    pub rflags: u64,
    /// CR0.
    pub cr0: u64,
    /// CR3.
    pub cr3: u64,
    /// CR4.
    pub cr4: u64,
    /// EFER.
    pub efer: u64,
    /// CS.
    pub cs: Segment,
    /// DS, ES, FS, GS and SS.
    pub ds: Segment,
    /// TR.
    pub tr: Segment,
    /// GDTR.
    pub gdt: DescriptorTable,
    /// IDTR.
    pub idt: DescriptorTable,
}

/// The boot structures and the entry state for one plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootSetup {
    /// Blobs to copy into guest memory, in order.
    pub writes: Vec<GuestWrite>,
    /// The boot vCPU's entry state.
    pub entry: EntryState,
}

/// Why the boot structures cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BootError {
    /// The plan's protocol is one only emitters handle.
    #[error("{0}")]
    Protocol(String),
    /// The bzImage setup header bytes are missing or short.
    #[error("setup header: {0}")]
    SetupHeader(String),
    /// A value does not fit the field the ABI gives it.
    #[error("{what} {value:#x} does not fit the {bits}-bit field {field}")]
    TooWide {
        /// What.
        what: &'static str,
        /// The value.
        value: u64,
        /// The field.
        field: &'static str,
        /// Its width.
        bits: u32,
    },
    /// Too many entries for the area the layout gives a table.
    #[error("{what}: {count} entries, at most {max} fit")]
    TooMany {
        /// What.
        what: &'static str,
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The command line does not fit anyboot's command-line area.
    #[error("command line of {len} bytes does not fit the {max}-byte area at {addr:#x}")]
    CmdlineTooLong {
        /// Its length with the NUL.
        len: usize,
        /// The area.
        max: u64,
        /// Where.
        addr: u64,
    },
    /// The MP table cannot be built.
    #[error("MP table: {0}")]
    MpTable(#[from] crate::mptable::MpTableError),
}

fn u32_field(what: &'static str, field: &'static str, value: u64) -> Result<u32, BootError> {
    u32::try_from(value).map_err(|_| BootError::TooWide {
        what,
        value,
        field,
        bits: 32,
    })
}

/// The boot GDT for `protocol` and the selectors of its code, data and TSS descriptors.
///
/// The Linux boot protocol fixes `__BOOT_CS` = 0x10 and `__BOOT_DS` = 0x18; PVH and multiboot
/// fix no selector values, so they get the conventional 0x08 code / 0x10 data. The TSS
/// descriptor is 16 bytes (its upper half is a null entry to a 32-bit CPU).
pub fn gdt(protocol: Protocol) -> ([u64; 6], u16, u16, u16) {
    let tss_low = GDT_NULL
        | TSS_LIMIT
        | ((layout::TSS_ADDR & 0xff_ffff) << 16)
        | (0x8b << 40) // present, DPL 0, type 0xb: busy 32/64-bit TSS
        | (((layout::TSS_ADDR >> 24) & 0xff) << 56);
    let tss_high = layout::TSS_ADDR >> 32;
    match protocol {
        Protocol::Linux64 => (
            [GDT_NULL, GDT_NULL, GDT_CODE64, GDT_DATA, tss_low, tss_high],
            0x10,
            0x18,
            0x20,
        ),
        Protocol::Linux32 => (
            [GDT_NULL, GDT_NULL, GDT_CODE32, GDT_DATA, tss_low, tss_high],
            0x10,
            0x18,
            0x20,
        ),
        Protocol::Pvh | Protocol::Multiboot => (
            [GDT_NULL, GDT_CODE32, GDT_DATA, tss_low, tss_high, GDT_NULL],
            0x08,
            0x10,
            0x18,
        ),
    }
}

fn le_u64s(v: &[u64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Identity page tables for the first 4 GiB with 2 MiB pages: PML4[0] → PDPT, PDPT[0..4] →
/// four page directories of 512 entries each.
fn identity_page_tables() -> Vec<GuestWrite> {
    const PRESENT_RW: u64 = 0x3;
    const PS: u64 = 0x80;
    let mut pml4 = vec![0u64; 512];
    pml4[0] = layout::PDPT_ADDR | PRESENT_RW;
    let mut pdpt = vec![0u64; 512];
    for (i, e) in pdpt.iter_mut().take(4).enumerate() {
        *e = (layout::PD_ADDR + (i as u64) * 0x1000) | PRESENT_RW;
    }
    let pd: Vec<u64> = (0..4 * 512u64)
        .map(|i| (i << 21) | PRESENT_RW | PS)
        .collect();
    vec![
        GuestWrite {
            what: "PML4",
            addr: layout::PML4_ADDR,
            bytes: le_u64s(&pml4),
        },
        GuestWrite {
            what: "PDPT",
            addr: layout::PDPT_ADDR,
            bytes: le_u64s(&pdpt),
        },
        GuestWrite {
            what: "page directories",
            addr: layout::PD_ADDR,
            bytes: le_u64s(&pd),
        },
    ]
}

/// The command line a multiboot kernel gets: the kernel's path, a space, then the plan's
/// command line — what GRUB and QEMU pass (NetBSD's multiboot code skips that first word).
pub fn multiboot_cmdline(plan: &BootPlan) -> String {
    let kernel = plan.boot_image.to_string_lossy();
    if plan.cmdline.is_empty() {
        kernel.into_owned()
    } else {
        format!("{kernel} {}", plan.cmdline)
    }
}

fn cmdline_write(text: &str) -> Result<GuestWrite, BootError> {
    let mut bytes = text.as_bytes().to_vec();
    bytes.push(0);
    if bytes.len() as u64 > layout::CMDLINE_MAX {
        return Err(BootError::CmdlineTooLong {
            len: bytes.len(),
            max: layout::CMDLINE_MAX,
            addr: layout::CMDLINE_ADDR,
        });
    }
    Ok(GuestWrite {
        what: "command line",
        addr: layout::CMDLINE_ADDR,
        bytes,
    })
}

fn pvh(plan: &BootPlan, map: &[Region]) -> Result<Vec<GuestWrite>, BootError> {
    let mods = &plan.modules;
    if mods.len() as u64 > layout::PVH_MAX_MODULES {
        return Err(BootError::TooMany {
            what: "PVH modules",
            count: mods.len(),
            max: usize::try_from(layout::PVH_MAX_MODULES).unwrap_or(usize::MAX),
        });
    }
    let memmap: Vec<u8> = map
        .iter()
        .flat_map(|r| {
            xen::HvmMemmapTableEntry {
                addr: r.start,
                size: r.size,
                type_: match r.kind {
                    RegionKind::Ram => xen::MEMMAP_RAM,
                    RegionKind::Reserved => xen::MEMMAP_RESERVED,
                },
                reserved: 0,
            }
            .as_bytes()
            .to_vec()
        })
        .collect();
    if memmap.len() as u64 > 4096 {
        return Err(BootError::TooMany {
            what: "PVH memory map",
            count: map.len(),
            max: 4096 / size_of::<xen::HvmMemmapTableEntry>(),
        });
    }
    let modlist: Vec<u8> = mods
        .iter()
        .flat_map(|m| {
            xen::HvmModlistEntry {
                paddr: m.addr,
                size: m.size,
                cmdline_paddr: 0,
                reserved: 0,
            }
            .as_bytes()
            .to_vec()
        })
        .collect();
    let info = xen::HvmStartInfo {
        magic: xen::HVM_START_MAGIC,
        version: plan.os.start_info_version,
        flags: 0,
        nr_modules: u32_field("module count", "nr_modules", mods.len() as u64)?,
        modlist_paddr: if mods.is_empty() {
            0
        } else {
            layout::PVH_MODLIST_ADDR
        },
        cmdline_paddr: layout::CMDLINE_ADDR,
        rsdp_paddr: 0,
        memmap_paddr: layout::BOOT_INFO_ADDR,
        memmap_entries: u32_field("memory map entries", "memmap_entries", map.len() as u64)?,
        reserved: 0,
    };
    let mut w = vec![GuestWrite {
        what: "hvm_start_info",
        addr: layout::PVH_START_INFO_ADDR,
        bytes: info.as_bytes().to_vec(),
    }];
    if !modlist.is_empty() {
        w.push(GuestWrite {
            what: "hvm_modlist_entry[]",
            addr: layout::PVH_MODLIST_ADDR,
            bytes: modlist,
        });
    }
    w.push(GuestWrite {
        what: "hvm_memmap_table_entry[]",
        addr: layout::BOOT_INFO_ADDR,
        bytes: memmap,
    });
    Ok(w)
}

/// The length of the setup header a bzImage declares: it runs from 0x1f1 to 0x202 plus the
/// jump offset at 0x201 (protocol 2.00+), bounded by what anyboot knows of it.
fn setup_header_len(setup: &[u8]) -> usize {
    let known = size_of::<linux::SetupHeader>();
    match setup.get(0x201 - linux::SETUP_HEADER_OFFSET) {
        Some(&jump) => (0x202 + usize::from(jump) - linux::SETUP_HEADER_OFFSET).min(known),
        None => known,
    }
}

fn zero_page(
    plan: &BootPlan,
    map: &[Region],
    setup: Option<&[u8]>,
) -> Result<GuestWrite, BootError> {
    let mut bp = linux::BootParams::default();
    match setup {
        Some(bytes) => {
            // Seed `hdr` with the image's own header, as the boot protocol asks ("the
            // setup header ... is to be copied into the zero page").
            let n = setup_header_len(bytes).min(bytes.len());
            if n < 0x202 + 4 + 2 - linux::SETUP_HEADER_OFFSET {
                return Err(BootError::SetupHeader(format!(
                    "{} bytes at 0x1f1, too short to hold the \"HdrS\" signature and version",
                    bytes.len()
                )));
            }
            let mut raw = [0u8; size_of::<linux::SetupHeader>()];
            raw[..n].copy_from_slice(&bytes[..n]);
            bp.hdr = linux::SetupHeader::read_from_bytes(&raw)
                .map_err(|_| BootError::SetupHeader("size mismatch".into()))?;
        }
        None => {
            // A vmlinux has no setup header: fill in what the kernel checks.
            bp.hdr.boot_flag = linux::BOOT_FLAG;
            bp.hdr.header = linux::HDRS;
            bp.hdr.version = 0x020f;
            bp.hdr.loadflags = linux::LOADED_HIGH;
            bp.hdr.kernel_alignment = 0x20_0000;
            // The plan places a vmlinux's initrd below the MMIO hole; say so (the 64-bit
            // entry does not read this field, but a loader should not contradict itself).
            bp.hdr.initrd_addr_max = u32_field(
                "end of low RAM",
                "initrd_addr_max",
                layout::MMIO_HOLE_START - 1,
            )?;
        }
    }
    bp.hdr.type_of_loader = linux::LOADER_TYPE_UNDEFINED;
    bp.hdr.cmd_line_ptr = u32_field("command line", "cmd_line_ptr", layout::CMDLINE_ADDR)?;
    bp.ext_cmd_line_ptr = 0;
    // No real-mode code runs, so no heap; and the kernel is where the plan put it.
    bp.hdr.loadflags &= !linux::CAN_USE_HEAP;
    if let Some(m) = plan.modules.first() {
        bp.hdr.ramdisk_image = (m.addr & 0xffff_ffff) as u32;
        bp.hdr.ramdisk_size = (m.size & 0xffff_ffff) as u32;
        bp.ext_ramdisk_image = u32_field("initrd address", "ext_ramdisk_image", m.addr >> 32)?;
        bp.ext_ramdisk_size = u32_field("initrd size", "ext_ramdisk_size", m.size >> 32)?;
    }
    if map.len() > linux::E820_MAX_ENTRIES_ZEROPAGE {
        return Err(BootError::TooMany {
            what: "e820 map",
            count: map.len(),
            max: linux::E820_MAX_ENTRIES_ZEROPAGE,
        });
    }
    for (slot, r) in bp.e820_table.iter_mut().zip(map) {
        *slot = linux::BootE820Entry {
            addr: r.start,
            size: r.size,
            type_: match r.kind {
                RegionKind::Ram => linux::E820_RAM,
                RegionKind::Reserved => linux::E820_RESERVED,
            },
        };
    }
    bp.e820_entries = u8::try_from(map.len()).unwrap_or(u8::MAX);
    Ok(GuestWrite {
        what: "boot_params (zero page)",
        addr: layout::BOOT_INFO_ADDR,
        bytes: bp.as_bytes().to_vec(),
    })
}

fn multiboot_info(plan: &BootPlan, map: &[Region]) -> Result<Vec<GuestWrite>, BootError> {
    let cmdline = multiboot_cmdline(plan);
    // Module strings follow the command line in its area.
    let mut strings = cmdline.as_bytes().to_vec();
    strings.push(0);
    let mut mods = Vec::new();
    for m in &plan.modules {
        let at = layout::CMDLINE_ADDR + strings.len() as u64;
        strings.extend_from_slice(m.path.to_string_lossy().as_bytes());
        strings.push(0);
        mods.push(multiboot::Module {
            mod_start: u32_field("module address", "mod_start", m.addr)?,
            mod_end: u32_field("module end", "mod_end", m.addr + m.size)?,
            string: u32_field("module string", "string", at)?,
            reserved: 0,
        });
    }
    if strings.len() as u64 > layout::CMDLINE_MAX {
        return Err(BootError::CmdlineTooLong {
            len: strings.len(),
            max: layout::CMDLINE_MAX,
            addr: layout::CMDLINE_ADDR,
        });
    }
    let mods_area = layout::MULTIBOOT_LOADER_NAME_ADDR - layout::MULTIBOOT_MODS_ADDR;
    let max_mods = usize::try_from(mods_area).unwrap_or(0) / size_of::<multiboot::Module>();
    if mods.len() > max_mods {
        return Err(BootError::TooMany {
            what: "multiboot modules",
            count: mods.len(),
            max: max_mods,
        });
    }
    let mmap: Vec<u8> = map
        .iter()
        .flat_map(|r| {
            multiboot::MmapEntry {
                size: 20,
                base_addr: r.start,
                length: r.size,
                type_: match r.kind {
                    RegionKind::Ram => multiboot::MEMORY_AVAILABLE,
                    RegionKind::Reserved => multiboot::MEMORY_RESERVED,
                },
            }
            .as_bytes()
            .to_vec()
        })
        .collect();
    let mmap_area = layout::MULTIBOOT_MODS_ADDR - layout::MULTIBOOT_MMAP_ADDR;
    if mmap.len() as u64 > mmap_area {
        return Err(BootError::TooMany {
            what: "multiboot memory map",
            count: map.len(),
            max: usize::try_from(mmap_area).unwrap_or(0) / size_of::<multiboot::MmapEntry>(),
        });
    }
    // mem_lower: KiB of RAM from 0; mem_upper: KiB of RAM contiguous from 1 MiB (§3.3).
    let lower = map
        .iter()
        .find(|r| r.kind == RegionKind::Ram && r.start == 0)
        .map_or(0, |r| r.size / 1024);
    let upper = map
        .iter()
        .find(|r| r.kind == RegionKind::Ram && r.start == layout::HIGH_RAM_START)
        .map_or(0, |r| r.size / 1024);
    let mut name = LOADER_NAME.as_bytes().to_vec();
    name.push(0);
    let info = multiboot::Info {
        flags: multiboot::INFO_MEMORY
            | multiboot::INFO_CMDLINE
            | multiboot::INFO_MODS
            | multiboot::INFO_MEM_MAP
            | multiboot::INFO_BOOT_LOADER_NAME,
        mem_lower: u32_field("low memory", "mem_lower", lower)?,
        mem_upper: u32_field("upper memory", "mem_upper", upper)?,
        cmdline: u32_field("command line", "cmdline", layout::CMDLINE_ADDR)?,
        mods_count: u32_field("module count", "mods_count", mods.len() as u64)?,
        mods_addr: u32_field("modules", "mods_addr", layout::MULTIBOOT_MODS_ADDR)?,
        mmap_length: u32_field("memory map", "mmap_length", mmap.len() as u64)?,
        mmap_addr: u32_field("memory map", "mmap_addr", layout::MULTIBOOT_MMAP_ADDR)?,
        boot_loader_name: u32_field(
            "loader name",
            "boot_loader_name",
            layout::MULTIBOOT_LOADER_NAME_ADDR,
        )?,
        ..Default::default()
    };
    let mods_bytes: Vec<u8> = mods.iter().flat_map(|m| m.as_bytes().to_vec()).collect();
    let mut w = vec![
        GuestWrite {
            what: "multiboot_info",
            addr: layout::BOOT_INFO_ADDR,
            bytes: info.as_bytes().to_vec(),
        },
        GuestWrite {
            what: "multiboot memory map",
            addr: layout::MULTIBOOT_MMAP_ADDR,
            bytes: mmap,
        },
        GuestWrite {
            what: "boot loader name",
            addr: layout::MULTIBOOT_LOADER_NAME_ADDR,
            bytes: name,
        },
        GuestWrite {
            what: "command line and module strings",
            addr: layout::CMDLINE_ADDR,
            bytes: strings,
        },
    ];
    if !mods_bytes.is_empty() {
        w.push(GuestWrite {
            what: "multiboot modules",
            addr: layout::MULTIBOOT_MODS_ADDR,
            bytes: mods_bytes,
        });
    }
    Ok(w)
}

/// Build the boot structures and entry state for `plan`.
///
/// `setup` is the bzImage's setup header as it sits in the file from offset 0x1f1 (at least
/// up to the end the header declares; 0x7b bytes cover every known field); it is needed only
/// for the Linux protocol from a bzImage, and ignored otherwise.
pub fn prepare(plan: &BootPlan, setup: Option<&[u8]>) -> Result<BootSetup, BootError> {
    let map = &plan.memory.map;
    let (gdt_entries, cs_sel, ds_sel, tr_sel) = gdt(plan.protocol);
    let desc = |sel: u16| gdt_entries[usize::from(sel / 8)];
    let mut writes = vec![
        GuestWrite {
            what: "boot GDT",
            addr: layout::GDT_ADDR,
            bytes: le_u64s(&gdt_entries),
        },
        GuestWrite {
            what: "boot IDT",
            addr: layout::IDT_ADDR,
            bytes: vec![0; 8],
        },
        GuestWrite {
            what: "boot TSS",
            addr: layout::TSS_ADDR,
            bytes: vec![0; 0x68],
        },
    ];
    let cpus = u8::try_from(plan.cpus).map_err(|_| BootError::TooWide {
        what: "vCPU count",
        value: u64::from(plan.cpus),
        field: "MP table APIC id",
        bits: 8,
    })?;
    writes.push(GuestWrite {
        what: "MP table",
        addr: layout::MPTABLE_ADDR,
        bytes: crate::mptable::mptable(u32::from(cpus), layout::MPTABLE_ADDR)?,
    });

    let mut entry = EntryState {
        mode: CpuMode::Protected32,
        rip: plan.entry,
        rsp: layout::BOOT_STACK_POINTER,
        rax: 0,
        rbx: 0,
        rsi: 0,
        rflags: RFLAGS_BOOT,
        cr0: CR0_PE | CR0_ET,
        cr3: 0,
        cr4: 0,
        efer: 0,
        cs: Segment::from_descriptor(cs_sel, desc(cs_sel)),
        ds: Segment::from_descriptor(ds_sel, desc(ds_sel)),
        tr: Segment::from_descriptor(tr_sel, desc(tr_sel)),
        gdt: DescriptorTable {
            base: layout::GDT_ADDR,
            limit: GDT_LIMIT,
        },
        idt: DescriptorTable {
            base: layout::IDT_ADDR,
            limit: 7,
        },
    };
    match plan.protocol {
        Protocol::Pvh => {
            writes.push(cmdline_write(&plan.cmdline)?);
            writes.extend(pvh(plan, map)?);
            entry.rbx = layout::PVH_START_INFO_ADDR;
        }
        Protocol::Linux64 => {
            let from_bzimage = plan.format == crate::inspect::Format::Bzimage;
            let setup = match (from_bzimage, setup) {
                (true, Some(s)) => Some(s),
                (true, None) => {
                    return Err(BootError::SetupHeader(
                        "a bzImage boot needs the image's setup header bytes".into(),
                    ));
                }
                (false, _) => None,
            };
            writes.push(cmdline_write(&plan.cmdline)?);
            writes.push(zero_page(plan, map, setup)?);
            writes.extend(identity_page_tables());
            entry.mode = CpuMode::Long64;
            entry.rsi = layout::BOOT_INFO_ADDR;
            entry.cr0 = CR0_PE | CR0_ET | CR0_PG;
            entry.cr3 = layout::PML4_ADDR;
            entry.cr4 = CR4_PAE;
            entry.efer = EFER_LME | EFER_LMA;
        }
        Protocol::Linux32 => {
            return Err(BootError::Protocol(
                "anyboot run boots Linux by its 64-bit entry (--protocol linux) or by PVH; the 32-bit entry (linux32) is for emitters".into(),
            ));
        }
        Protocol::Multiboot => {
            writes.extend(multiboot_info(plan, map)?);
            entry.rax = u64::from(multiboot::BOOTLOADER_MAGIC);
            entry.rbx = layout::BOOT_INFO_ADDR;
        }
    }
    Ok(BootSetup { writes, entry })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_decode_like_the_manual_says() {
        let cs = Segment::from_descriptor(0x10, GDT_CODE64);
        assert_eq!((cs.base, cs.limit, cs.type_), (0, 0xffff_ffff, 0xb));
        assert!(cs.l && !cs.db && cs.g && cs.s && cs.present);
        let ds = Segment::from_descriptor(0x18, GDT_DATA);
        assert_eq!((ds.type_, ds.db, ds.l), (0x3, true, false));
        let (g, _, _, tr) = gdt(Protocol::Pvh);
        let t = Segment::from_descriptor(tr, g[usize::from(tr / 8)]);
        assert_eq!(
            (t.base, t.limit, t.type_, t.s),
            (layout::TSS_ADDR, 0x67, 0xb, false)
        );
    }

    #[test]
    fn page_tables_map_4_gib_identity() {
        let w = identity_page_tables();
        let pd = &w[2].bytes;
        assert_eq!(pd.len(), 4 * 4096);
        let last = u64::from_le_bytes(pd[pd.len() - 8..].try_into().unwrap());
        assert_eq!(last & !0xfff, (4u64 << 30) - (2 << 20));
        assert_eq!(w[2].addr + pd.len() as u64, layout::PAGE_TABLES_END);
    }
}
