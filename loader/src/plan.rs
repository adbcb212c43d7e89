//! Boot plans: one image and one set of options become one plain, serializable value that every
//! backend consumes.
//!
//! Hand-written: the plan is anyboot's own model. Building it is pure: the image has already
//! been inspected ([`crate::inspect::Report`]), and the caller passes in the sizes of the files
//! it names (initrd) rather than the plan reading them.

use std::path::PathBuf;

use serde::Serialize;

use std::mem::size_of;

use crate::abi::{linux, multiboot, xen};
use crate::inspect::{Format, Report};
use crate::layout::{self, Region};

/// Default guest memory.
pub const DEFAULT_MEM_MIB: u64 = 512;
/// Most vCPUs a plan accepts.
pub const MAX_CPUS: u32 = 255;
/// Linux's x86 `COMMAND_LINE_SIZE`, for a vmlinux that carries no setup header.
pub const LINUX_COMMAND_LINE_SIZE: u64 = 2048;
/// NetBSD's `xen_parse_cmdline()` buffer: longer command lines are truncated.
pub const NETBSD_CMDLINE_MAX: u64 = 255;
const PAGE: u64 = 4096;

/// A boot protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Xen PVH: 32-bit protected mode at PHYS32_ENTRY, `hvm_start_info` in EBX.
    Pvh,
    /// The Linux boot protocol's 64-bit entry, with a zero page in RSI.
    Linux64,
    /// The Linux boot protocol's 32-bit entry (for backends that only do that one).
    Linux32,
    /// Multiboot v1: 32-bit protected mode, EAX = 0x2BADB002, EBX = information.
    Multiboot,
}

impl Protocol {
    /// The name used on the command line (`pvh`, `linux`, `linux32`, `multiboot`).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Pvh => "pvh",
            Protocol::Linux64 => "linux",
            Protocol::Linux32 => "linux32",
            Protocol::Multiboot => "multiboot",
        }
    }
}

/// A guest OS profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OsKind {
    /// Linux.
    Linux,
    /// NetBSD (MICROVM/GENERIC with PVH).
    Netbsd,
    /// FreeBSD (FIRECRACKER/GENERIC with PVH).
    Freebsd,
    /// Anything else.
    Generic,
}

/// How virtio-mmio devices are announced to the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VirtioDiscovery {
    /// ACPI DSDT entries (`LNRO0005`); Linux on qemu-microvm with its modular virtio_mmio.
    Acpi,
    /// `virtio_mmio.device=` entries on the command line, ACPI off (NetBSD MICROVM).
    Cmdline,
}

/// What anyboot knows about booting one OS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OsProfile {
    /// The OS.
    pub kind: OsKind,
    /// Why this profile (detected from which note, or forced).
    pub reason: String,
    /// The serial console's name on the command line (`ttyS0`, `com`, ...), if any.
    pub console: Option<&'static str>,
    /// How the first virtio block device is named (`/dev/vda`, `ld0a`, `vtbd0`).
    pub root_device: Option<&'static str>,
    /// How virtio-mmio devices are announced.
    pub virtio: VirtioDiscovery,
    /// Use modern (v2) virtio-mmio rather than QEMU's legacy default.
    pub modern_virtio_mmio: bool,
    /// Longest command line, without its NUL.
    pub cmdline_limit: u64,
    /// Where the limit comes from.
    pub cmdline_limit_source: String,
    /// `hvm_start_info` version to write (1 carries the memory map).
    pub start_info_version: u32,
    /// PVH module 0 is loader metadata (FreeBSD), so no initrd can be passed as a module.
    pub module0_is_metadata: bool,
}

/// A file range copied to guest memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanSegment {
    /// File offset in the boot image.
    pub file_offset: u64,
    /// Bytes copied.
    pub file_size: u64,
    /// Guest-physical destination.
    pub guest_addr: u64,
    /// Bytes reserved in the guest (the rest past `file_size` is zeroed BSS).
    pub mem_size: u64,
}

/// A boot structure the backend writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placement {
    /// What it is.
    pub what: &'static str,
    /// Guest-physical address.
    pub addr: u64,
    /// Size in bytes.
    pub size: u64,
}

/// An initrd or module placed in guest memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Module {
    /// The host file.
    pub path: PathBuf,
    /// Its size.
    pub size: u64,
    /// Guest-physical address.
    pub addr: u64,
    /// Role.
    pub role: &'static str,
}

/// A disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disk {
    /// The host file or device.
    pub path: PathBuf,
    /// Read-only.
    pub read_only: bool,
}

/// The vmlinux a backend must be given instead of the bzImage (PVH from a bzImage).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Extraction {
    /// The bzImage.
    pub from: PathBuf,
    /// Where the inner vmlinux is (to be) written.
    pub to: PathBuf,
    /// Its size (the payload trailer).
    pub size: u64,
}

/// Guest memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Memory {
    /// RAM in MiB.
    pub size_mib: u64,
    /// The memory map.
    pub map: Vec<Region>,
}

/// A boot plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootPlan {
    /// Version of this document's shape.
    pub schema_version: u32,
    /// VM name.
    pub name: String,
    /// The image as given.
    pub kernel: PathBuf,
    /// Its format.
    pub format: Format,
    /// The file a backend loads: the image itself, or the extracted vmlinux.
    pub boot_image: PathBuf,
    /// Set when `boot_image` is extracted from a bzImage.
    pub extraction: Option<Extraction>,
    /// The protocol.
    pub protocol: Protocol,
    /// Why it was chosen.
    pub reason: String,
    /// Entry point (guest-physical).
    pub entry: u64,
    /// What to copy where.
    pub segments: Vec<PlanSegment>,
    /// Lowest and one-past-highest guest address the kernel may use before it reads the
    /// memory map (segments, BSS and the bzImage's `init_size`).
    pub kernel_range: (u64, u64),
    /// Guest memory.
    pub memory: Memory,
    /// Where the boot structures go.
    pub boot_structures: Vec<Placement>,
    /// Kernel command line.
    pub cmdline: String,
    /// Initrd and modules.
    pub modules: Vec<Module>,
    /// Disks, in order.
    pub disks: Vec<Disk>,
    /// vCPUs.
    pub cpus: u32,
    /// The OS profile.
    pub os: OsProfile,
}

/// Options common to `plan`, `emit` and `run`.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Initrd path and size in bytes (the caller stats the file).
    pub initrd: Option<(PathBuf, u64)>,
    /// Command line; `None` for the OS profile's default.
    pub cmdline: Option<String>,
    /// Guest memory in MiB; `None` for [`DEFAULT_MEM_MIB`].
    pub mem_mib: Option<u64>,
    /// vCPUs; `None` for 1.
    pub cpus: Option<u32>,
    /// Disks.
    pub disks: Vec<Disk>,
    /// Force a protocol.
    pub protocol: Option<Protocol>,
    /// Force an OS profile.
    pub os: Option<OsKind>,
    /// VM name; `None` for one derived from the file name.
    pub name: Option<String>,
    /// Where an extracted vmlinux goes (directory) — required to plan PVH for a bzImage.
    pub extract_dir: Option<PathBuf>,
}

/// Why a plan cannot be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlanError {
    /// The forced protocol is one the image cannot do.
    #[error("cannot boot by {protocol}: {why}")]
    Unsupported {
        /// The protocol asked for.
        protocol: &'static str,
        /// Why not.
        why: String,
    },
    /// No protocol at all.
    #[error("no boot protocol anyboot supports: {why}")]
    NotBootable {
        /// Why.
        why: String,
    },
    /// The kernel does not fit the memory asked for.
    #[error(
        "the kernel needs guest memory up to {needed:#x} ({needed_mib} MiB), but --mem gives {mem_mib} MiB (RAM below the MMIO hole ends at {ram_end:#x})"
    )]
    KernelTooBig {
        /// One past the highest byte it needs.
        needed: u64,
        /// The same in MiB, rounded up.
        needed_mib: u64,
        /// Memory asked for.
        mem_mib: u64,
        /// End of RAM below the hole.
        ram_end: u64,
    },
    /// The kernel overlaps the boot structures in low memory, or two segments overlap.
    #[error("segment at {addr:#x}..{end:#x} overlaps {other}")]
    Overlap {
        /// Start.
        addr: u64,
        /// End.
        end: u64,
        /// What it overlaps.
        other: String,
    },
    /// The initrd does not fit.
    #[error(
        "initrd of {size} bytes does not fit between the kernel's end {low:#x} and {high:#x} ({limit})"
    )]
    InitrdTooBig {
        /// Its size.
        size: u64,
        /// Lowest address allowed.
        low: u64,
        /// One past the highest address allowed.
        high: u64,
        /// What sets `high`.
        limit: String,
    },
    /// The command line is too long.
    #[error("command line is {len} bytes; the kernel accepts at most {limit} ({source_of_limit})")]
    CmdlineTooLong {
        /// Its length.
        len: u64,
        /// The limit.
        limit: u64,
        /// Where the limit comes from.
        source_of_limit: String,
    },
    /// The command line contains a NUL.
    #[error("command line contains a NUL byte at offset {0}")]
    CmdlineNul(usize),
    /// An option is out of range.
    #[error("{0}")]
    BadOption(String),
    /// An initrd the OS cannot take.
    #[error("{0}")]
    InitrdNotSupported(String),
}

fn profile(report: &Report, forced: Option<OsKind>) -> OsProfile {
    let guest = report.guest_os.as_deref().unwrap_or("");
    let (kind, reason) = match forced {
        Some(k) => (k, "forced with --os".to_owned()),
        None if report.format == Format::Bzimage => {
            (OsKind::Linux, "a bzImage is a Linux kernel".to_owned())
        }
        None if guest.eq_ignore_ascii_case("linux") => {
            (OsKind::Linux, format!("GUEST_OS note \"{guest}\""))
        }
        None if guest.eq_ignore_ascii_case("netbsd") => {
            (OsKind::Netbsd, format!("GUEST_OS note \"{guest}\""))
        }
        None if guest.eq_ignore_ascii_case("freebsd") => {
            (OsKind::Freebsd, format!("GUEST_OS note \"{guest}\""))
        }
        None if report.other_notes.iter().any(|n| n.owner == "Linux") => {
            (OsKind::Linux, "Linux-owned ELF notes".to_owned())
        }
        None => (
            OsKind::Generic,
            if guest.is_empty() {
                "no GUEST_OS note".to_owned()
            } else {
                format!("GUEST_OS note \"{guest}\" has no profile")
            },
        ),
    };
    let bz_limit = report.bzimage.as_ref().map(|b| u64::from(b.cmdline_size));
    let (cmdline_limit, cmdline_limit_source) = match (kind, bz_limit) {
        (_, Some(l)) => (l, "the bzImage's cmdline_size at 0x238".to_owned()),
        (OsKind::Linux, None) => (
            LINUX_COMMAND_LINE_SIZE - 1,
            "Linux's x86 COMMAND_LINE_SIZE".to_owned(),
        ),
        (OsKind::Netbsd, None) => (
            NETBSD_CMDLINE_MAX,
            "NetBSD's xen_parse_cmdline() truncates at 255 characters".to_owned(),
        ),
        _ => (
            layout::CMDLINE_MAX - 1,
            "anyboot's command-line area".to_owned(),
        ),
    };
    let (console, root_device, virtio, modern) = match kind {
        OsKind::Linux => (
            Some("ttyS0"),
            Some("/dev/vda"),
            VirtioDiscovery::Acpi,
            false,
        ),
        OsKind::Netbsd => (Some("com"), Some("ld0a"), VirtioDiscovery::Cmdline, true),
        OsKind::Freebsd => (Some("uart"), Some("vtbd0"), VirtioDiscovery::Acpi, true),
        OsKind::Generic => (None, None, VirtioDiscovery::Acpi, false),
    };
    OsProfile {
        kind,
        reason,
        console,
        root_device,
        virtio,
        modern_virtio_mmio: modern,
        cmdline_limit,
        cmdline_limit_source,
        start_info_version: 1,
        module0_is_metadata: kind == OsKind::Freebsd,
    }
}

fn default_cmdline(os: &OsProfile) -> String {
    match os.kind {
        OsKind::Linux => "console=ttyS0 reboot=t panic=-1".to_owned(),
        OsKind::Netbsd => "console=com".to_owned(),
        OsKind::Freebsd | OsKind::Generic => String::new(),
    }
}

fn unsupported(protocol: Protocol, why: impl Into<String>) -> PlanError {
    PlanError::Unsupported {
        protocol: protocol.name(),
        why: why.into(),
    }
}

/// Pick the protocol: forced, or the best the image offers, with the reason.
fn choose(report: &Report, forced: Option<Protocol>) -> Result<(Protocol, String), PlanError> {
    let pvh = report.pvh_entry.is_some();
    let bz = report.bzimage.as_ref();
    let linux64 = bz.is_some_and(|b| b.header.has_entry64())
        || (report.format == Format::Elf
            && report.elf_class == Some(64)
            && report.elf_machine == Some("x86-64")
            && report
                .entry_points
                .iter()
                .any(|e| e.protocol == crate::inspect::EntryKind::Linux64));
    let multiboot = report.multiboot.as_ref();
    match forced {
        Some(Protocol::Pvh) => {
            if !pvh {
                return Err(unsupported(
                    Protocol::Pvh,
                    "the image has no XEN_ELFNOTE_PHYS32_ENTRY note",
                ));
            }
            Ok((Protocol::Pvh, "forced with --protocol pvh".into()))
        }
        Some(Protocol::Linux64) => {
            if let Some(b) = bz {
                if !b.header.has_entry64() {
                    return Err(unsupported(
                        Protocol::Linux64,
                        format!(
                            "boot protocol {} without XLF_KERNEL_64 has no 64-bit entry",
                            b.protocol
                        ),
                    ));
                }
            } else if !linux64 {
                return Err(unsupported(
                    Protocol::Linux64,
                    "not a bzImage, and not an x86-64 Linux vmlinux (no Linux notes or GUEST_OS \"linux\")",
                ));
            }
            Ok((Protocol::Linux64, "forced with --protocol linux".into()))
        }
        Some(Protocol::Linux32) => {
            if !bz.is_some_and(|b| b.header.loaded_high()) {
                return Err(unsupported(
                    Protocol::Linux32,
                    "the 32-bit entry needs a bzImage (setup header with LOADED_HIGH)",
                ));
            }
            Ok((Protocol::Linux32, "forced with --protocol linux32".into()))
        }
        Some(Protocol::Multiboot) => {
            let Some(mb) = multiboot else {
                return Err(unsupported(
                    Protocol::Multiboot,
                    "no multiboot v1 header in the first 8 KiB",
                ));
            };
            multiboot_usable(report, mb)?;
            Ok((
                Protocol::Multiboot,
                "forced with --protocol multiboot".into(),
            ))
        }
        None => {
            if let Some(b) = bz {
                if b.header.has_entry64() {
                    let also = if pvh {
                        "; its inner vmlinux is also PVH-capable (--protocol pvh extracts it)"
                    } else {
                        ""
                    };
                    return Ok((
                        Protocol::Linux64,
                        format!(
                            "a bzImage with boot protocol {} and XLF_KERNEL_64 boots by its 64-bit entry{also}",
                            b.protocol
                        ),
                    ));
                }
                if pvh {
                    return Ok((
                        Protocol::Pvh,
                        "a bzImage without a 64-bit entry whose inner vmlinux has a PVH note"
                            .into(),
                    ));
                }
                return Err(PlanError::NotBootable {
                    why: format!(
                        "bzImage with boot protocol {} has no 64-bit entry (XLF_KERNEL_64) and no PVH note; use --protocol linux32",
                        b.protocol
                    ),
                });
            }
            if pvh {
                let extra = if multiboot.is_some() {
                    " (it also has a multiboot header; QEMU would pick that one first)"
                } else {
                    ""
                };
                return Ok((
                    Protocol::Pvh,
                    format!(
                        "the ELF carries XEN_ELFNOTE_PHYS32_ENTRY, as Firecracker prefers{extra}"
                    ),
                ));
            }
            if linux64 {
                return Ok((
                    Protocol::Linux64,
                    "an x86-64 Linux vmlinux without a PVH note boots at e_entry with a zero page"
                        .into(),
                ));
            }
            if let Some(mb) = multiboot {
                multiboot_usable(report, mb)?;
                return Ok((
                    Protocol::Multiboot,
                    format!("multiboot v1 header at file offset {:#x}", mb.offset),
                ));
            }
            Err(PlanError::NotBootable {
                why: match report.format {
                    Format::Multiboot2 => "multiboot2 is detected but not booted".into(),
                    _ if report.xen_notes.is_empty() && report.xen_guest.is_none() => {
                        "no PVH note, no Linux setup header or notes, no multiboot header".into()
                    }
                    _ => "only Xen PV notes (boot it with xl, type = \"pv\")".into(),
                },
            })
        }
    }
}

fn multiboot_usable(
    report: &Report,
    mb: &crate::multiboot::MultibootHeader,
) -> Result<(), PlanError> {
    if let Some(p) = mb.problems.first() {
        return Err(unsupported(Protocol::Multiboot, p.clone()));
    }
    if mb.aout_kludge.is_none() && report.elf_class != Some(32) {
        return Err(unsupported(
            Protocol::Multiboot,
            "without the a.out kludge (flag bit 16) a multiboot kernel must be an ELF32",
        ));
    }
    Ok(())
}

fn align_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a.max(1)) * a.max(1)
}

/// What the chosen protocol loads: segments, entry and the kernel's whole range.
struct Loaded {
    segments: Vec<PlanSegment>,
    entry: u64,
    range: (u64, u64),
}

/// The segments to load and the entry, for the chosen protocol.
fn segments(report: &Report, protocol: Protocol) -> Result<Loaded, PlanError> {
    // The ELF's own length: the file, or for a bzImage the inner vmlinux its trailer declares.
    let elf_len = match &report.bzimage {
        Some(b) => u64::from(b.decompressed_size.unwrap_or(0)),
        None => report.file_size,
    };
    let from_elf = |entry: u64| -> Result<Loaded, PlanError> {
        let mut segs = Vec::new();
        for s in report
            .segments
            .iter()
            .filter(|s| s.is_load() && s.memsz > 0)
        {
            let file_size = s.filesz.min(s.memsz);
            if s.offset
                .checked_add(file_size)
                .is_none_or(|end| end > elf_len)
            {
                return Err(PlanError::NotBootable {
                    why: format!(
                        "PT_LOAD segment {} (p_offset {:#x}, p_filesz {:#x}) reaches past the end of the ELF at {elf_len:#x}",
                        s.index, s.offset, file_size
                    ),
                });
            }
            segs.push(PlanSegment {
                file_offset: s.offset,
                file_size,
                guest_addr: s.paddr,
                mem_size: s.memsz,
            });
        }
        if segs.is_empty() {
            return Err(PlanError::NotBootable {
                why: "the ELF has no PT_LOAD segment".into(),
            });
        }
        let lo = segs.iter().map(|s| s.guest_addr).min().unwrap_or(0);
        let hi = segs
            .iter()
            .map(|s| s.guest_addr.saturating_add(s.mem_size))
            .max()
            .unwrap_or(0);
        Ok(Loaded {
            segments: segs,
            entry,
            range: (lo, hi),
        })
    };
    match protocol {
        Protocol::Pvh => {
            let entry = u64::from(report.pvh_entry.unwrap_or(0));
            // For a bzImage the segments are the inner vmlinux's, in the extracted file.
            from_elf(entry)
        }
        Protocol::Linux64 | Protocol::Linux32 => match &report.bzimage {
            Some(b) => {
                let load = if b.relocatable {
                    match b.pref_address {
                        Some(p) if p >= layout::HIGH_RAM_START => p,
                        _ => align_up(layout::HIGH_RAM_START, u64::from(b.kernel_alignment)),
                    }
                } else {
                    u64::from(b.code32_start)
                };
                if b.protected_mode_offset >= report.file_size {
                    return Err(PlanError::NotBootable {
                        why: format!(
                            "setup_sects at 0x1f1 puts the protected-mode kernel at {:#x}, at or past the end of the file ({:#x})",
                            b.protected_mode_offset, report.file_size
                        ),
                    });
                }
                let size = report.file_size - b.protected_mode_offset;
                let init = u64::from(b.init_size.unwrap_or(0)).max(size);
                let entry = if protocol == Protocol::Linux64 {
                    load.checked_add(crate::bzimage::ENTRY64_OFFSET)
                        .ok_or_else(|| PlanError::NotBootable {
                            why: format!(
                                "pref_address {load:#x} at 0x258 leaves no room for the 64-bit entry at +0x200"
                            ),
                        })?
                } else {
                    load
                };
                Ok(Loaded {
                    segments: vec![PlanSegment {
                        file_offset: b.protected_mode_offset,
                        file_size: size,
                        guest_addr: load,
                        mem_size: size,
                    }],
                    entry,
                    range: (load, load.saturating_add(init)),
                })
            }
            None => from_elf(report.elf_entry.unwrap_or(0)),
        },
        Protocol::Multiboot => {
            let mb = report
                .multiboot
                .as_ref()
                .ok_or_else(|| PlanError::NotBootable {
                    why: "no multiboot header".into(),
                })?;
            match (
                &mb.aout_kludge,
                mb.aout_kludge.as_ref().and_then(|k| k.load_file_offset),
            ) {
                (Some(k), Some(off)) => {
                    let load = u64::from(k.load_addr);
                    let file_end = if k.load_end_addr == 0 {
                        report.file_size.saturating_sub(off)
                    } else {
                        u64::from(k.load_end_addr.saturating_sub(k.load_addr))
                    };
                    let file_size = file_end;
                    if off.saturating_add(file_size) > report.file_size {
                        // QEMU refuses this too ("fread() failed").
                        return Err(PlanError::NotBootable {
                            why: format!(
                                "multiboot a.out kludge: load_end_addr {:#x} asks for {file_size:#x} bytes from file offset {off:#x}, past the end of the file at {:#x}",
                                k.load_end_addr, report.file_size
                            ),
                        });
                    }
                    let mem_end = if k.bss_end_addr == 0 {
                        load + file_size
                    } else {
                        u64::from(k.bss_end_addr).max(load + file_size)
                    };
                    Ok(Loaded {
                        segments: vec![PlanSegment {
                            file_offset: off,
                            file_size,
                            guest_addr: load,
                            mem_size: mem_end - load,
                        }],
                        entry: u64::from(k.entry_addr),
                        range: (load, mem_end),
                    })
                }
                _ => from_elf(report.elf_entry.unwrap_or(0)),
            }
        }
    }
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// The default VM name: `anyboot-` and the kernel's file name with every character other than
/// ASCII letters, digits, `-` and `_` turned into `-`.
pub fn default_name(kernel: &std::path::Path) -> String {
    let stem = kernel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "kernel".into());
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("anyboot-{clean}")
}

/// Build the plan for an inspected image.
pub fn build(
    kernel: &std::path::Path,
    report: &Report,
    opts: &PlanOptions,
) -> Result<BootPlan, PlanError> {
    let mem_mib = opts.mem_mib.unwrap_or(DEFAULT_MEM_MIB);
    if !(16..=1 << 20).contains(&mem_mib) {
        return Err(PlanError::BadOption(format!(
            "--mem {mem_mib}: guest memory must be between 16 MiB and 1 TiB"
        )));
    }
    let cpus = opts.cpus.unwrap_or(1);
    if !(1..=MAX_CPUS).contains(&cpus) {
        return Err(PlanError::BadOption(format!(
            "--cpus {cpus}: between 1 and {MAX_CPUS}"
        )));
    }
    let os = profile(report, opts.os);
    let (protocol, reason) = choose(report, opts.protocol)?;

    // PVH from a bzImage boots the extracted inner vmlinux.
    let extraction = if protocol == Protocol::Pvh && report.format == Format::Bzimage {
        let b = report
            .bzimage
            .as_ref()
            .ok_or_else(|| PlanError::NotBootable {
                why: "bzImage facts missing".into(),
            })?;
        let dir = opts.extract_dir.clone().ok_or_else(|| {
            unsupported(
                Protocol::Pvh,
                "PVH from a bzImage needs a directory to extract the vmlinux to",
            )
        })?;
        let stem = kernel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "kernel".into());
        // Keyed by the inner vmlinux's identity, so an unchanged source reuses the file.
        let key = match &report.build_id {
            Some(id) => id.chars().take(16).collect::<String>(),
            None => format!(
                "{:x}-{:x}",
                report.file_size,
                b.decompressed_size.unwrap_or(0)
            ),
        };
        Some(Extraction {
            from: kernel.to_path_buf(),
            to: dir.join(format!("{stem}.{key}.vmlinux")),
            size: u64::from(b.decompressed_size.unwrap_or(0)),
        })
    } else {
        None
    };
    // Extraction decompresses up to the size the trailer declares, and never more than the
    // guest's memory: a kernel larger than its RAM cannot boot, and the cap keeps a payload that
    // declares 4 GiB from filling the disk.
    if let Some(e) = &extraction
        && e.size > mem_mib << 20
    {
        return Err(PlanError::NotBootable {
            why: format!(
                "the payload trailer declares a {:#x}-byte vmlinux, more than the guest's {mem_mib} MiB of memory",
                e.size
            ),
        });
    }
    let boot_image = extraction
        .as_ref()
        .map_or_else(|| kernel.to_path_buf(), |e| e.to.clone());

    let Loaded {
        segments: segs,
        entry,
        range: kernel_range,
    } = segments(report, protocol)?;
    let mem = mem_mib << 20;
    let map = layout::memory_map(mem);
    let ram_end = mem.min(layout::MMIO_HOLE_START);

    // Everything the kernel touches must be RAM above the low boot area and below the hole.
    let low_area = (0, layout::HIGH_RAM_START);
    for s in &segs {
        let r = (s.guest_addr, s.guest_addr.saturating_add(s.mem_size));
        if overlaps(r, low_area) {
            return Err(PlanError::Overlap {
                addr: r.0,
                end: r.1,
                other: format!(
                    "anyboot's boot structures and the BIOS area below {:#x}",
                    layout::HIGH_RAM_START
                ),
            });
        }
    }
    for (i, a) in segs.iter().enumerate() {
        for b in &segs[i + 1..] {
            let ra = (a.guest_addr, a.guest_addr.saturating_add(a.mem_size));
            let rb = (b.guest_addr, b.guest_addr.saturating_add(b.mem_size));
            if overlaps(ra, rb) {
                return Err(PlanError::Overlap {
                    addr: ra.0,
                    end: ra.1,
                    other: format!("another segment at {:#x}..{:#x}", rb.0, rb.1),
                });
            }
        }
    }
    if kernel_range.1 > ram_end {
        return Err(PlanError::KernelTooBig {
            needed: kernel_range.1,
            needed_mib: kernel_range.1.div_ceil(1 << 20),
            mem_mib,
            ram_end,
        });
    }

    // Command line.
    let cmdline = opts.cmdline.clone().unwrap_or_else(|| default_cmdline(&os));
    if let Some(p) = cmdline.bytes().position(|b| b == 0) {
        return Err(PlanError::CmdlineNul(p));
    }
    let len = cmdline.len() as u64;
    if len > os.cmdline_limit {
        return Err(PlanError::CmdlineTooLong {
            len,
            limit: os.cmdline_limit,
            source_of_limit: os.cmdline_limit_source.clone(),
        });
    }

    // Initrd: as high as allowed, page-aligned, above the kernel's whole range.
    let mut modules = Vec::new();
    if let Some((path, size)) = &opts.initrd {
        if protocol == Protocol::Pvh && os.module0_is_metadata {
            return Err(PlanError::InitrdNotSupported(
                "FreeBSD reads PVH module 0 as loader metadata, not an initrd: boot it without --initrd".into(),
            ));
        }
        let (high, limit) = match (&report.bzimage, protocol) {
            (Some(b), Protocol::Linux64 | Protocol::Linux32) => {
                let max = u64::from(b.initrd_addr_max) + 1;
                if max < ram_end {
                    (max, format!("initrd_addr_max {:#x}", b.initrd_addr_max))
                } else {
                    (
                        ram_end,
                        format!("end of RAM below the MMIO hole with --mem {mem_mib}"),
                    )
                }
            }
            _ => (
                ram_end,
                format!("end of RAM below the MMIO hole with --mem {mem_mib}"),
            ),
        };
        let low = align_up(kernel_range.1, PAGE);
        let addr = high.checked_sub(*size).map(|a| a / PAGE * PAGE);
        match addr {
            Some(a) if a >= low && *size > 0 => modules.push(Module {
                path: path.clone(),
                size: *size,
                addr: a,
                role: "initrd",
            }),
            _ if *size == 0 => {
                return Err(PlanError::BadOption(format!(
                    "--initrd {}: the file is empty",
                    path.display()
                )));
            }
            _ => {
                return Err(PlanError::InitrdTooBig {
                    size: *size,
                    low,
                    high,
                    limit,
                });
            }
        }
    }

    let size = |n: usize| n as u64;
    let (n_mods, n_map) = (modules.len(), map.len());
    let gdt = ("boot GDT", layout::GDT_ADDR, layout::GDT_SIZE);
    let per_protocol: Vec<(&'static str, u64, u64)> = match protocol {
        Protocol::Pvh => vec![
            (
                "hvm_start_info",
                layout::PVH_START_INFO_ADDR,
                size(size_of::<xen::HvmStartInfo>()),
            ),
            (
                "hvm_modlist_entry[]",
                layout::PVH_MODLIST_ADDR,
                size(n_mods * size_of::<xen::HvmModlistEntry>()),
            ),
            (
                "hvm_memmap_table_entry[]",
                layout::BOOT_INFO_ADDR,
                size(n_map * size_of::<xen::HvmMemmapTableEntry>()),
            ),
            gdt,
        ],
        Protocol::Linux64 | Protocol::Linux32 => {
            let mut v = vec![
                (
                    "boot_params (zero page)",
                    layout::BOOT_INFO_ADDR,
                    size(size_of::<linux::BootParams>()),
                ),
                gdt,
            ];
            if protocol == Protocol::Linux64 {
                v.push((
                    "identity page tables (4 GiB, 2 MiB pages)",
                    layout::PML4_ADDR,
                    layout::PAGE_TABLES_END - layout::PML4_ADDR,
                ));
            }
            v
        }
        Protocol::Multiboot => vec![
            (
                "multiboot_info",
                layout::BOOT_INFO_ADDR,
                size(size_of::<multiboot::Info>()),
            ),
            (
                "multiboot memory map",
                layout::MULTIBOOT_MMAP_ADDR,
                size(n_map * size_of::<multiboot::MmapEntry>()),
            ),
            (
                "multiboot modules",
                layout::MULTIBOOT_MODS_ADDR,
                size(n_mods * size_of::<multiboot::Module>()),
            ),
            gdt,
        ],
    };
    // Every protocol gets the MP table (the CPUs and the IOAPIC) and the boot GDT.
    let mptable_len = crate::mptable::mptable(cpus, layout::MPTABLE_ADDR)
        .map_err(|e| PlanError::BadOption(format!("--cpus {cpus}: {e}")))?
        .len();
    let boot_structures = std::iter::once(("command line", layout::CMDLINE_ADDR, len + 1))
        .chain(per_protocol)
        .chain(std::iter::once((
            "MP table",
            layout::MPTABLE_ADDR,
            size(mptable_len),
        )))
        .map(|(what, addr, size)| Placement { what, addr, size })
        .collect();

    let name = opts.name.clone().unwrap_or_else(|| default_name(kernel));

    Ok(BootPlan {
        schema_version: 1,
        name,
        kernel: kernel.to_path_buf(),
        format: report.format,
        boot_image,
        extraction,
        protocol,
        reason,
        entry,
        segments: segs,
        kernel_range,
        memory: Memory {
            size_mib: mem_mib,
            map,
        },
        boot_structures,
        cmdline,
        modules,
        disks: opts.disks.clone(),
        cpus,
        os,
    })
}
