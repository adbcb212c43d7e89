//! Text and JSON rendering of an inspection report.

use std::fmt::Write;
use std::path::Path;

use elfnote::XenValue;
use loader::inspect::{EntryKind, Format, Report};
use serde::Serialize;

/// The `inspect --json` document: the report with the file name first.
#[derive(Serialize)]
pub struct JsonDoc<'a> {
    /// The path as given.
    pub file: &'a str,
    /// Everything else.
    #[serde(flatten)]
    pub report: &'a Report,
}

const W: usize = 20;

/// Strings from the image reach the terminal through here: control characters (escape
/// sequences, line breaks, carriage returns) are shown escaped, so a hostile note cannot
/// rewrite the screen or fake a line of the report.
fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn row(out: &mut String, label: &str, value: impl std::fmt::Display) {
    let label = clean(label);
    let value = clean(&value.to_string());
    let _ = writeln!(out, "  {label:<W$} {value}");
}

fn value_text(v: &XenValue) -> String {
    match v {
        XenValue::Number(n) => format!("{n:#x}"),
        XenValue::Text(s) => format!("{s:?}"),
        XenValue::Features(f) => f
            .iter()
            .map(|f| format!("{}{}", if f.required { "!" } else { "" }, f.name))
            .collect::<Vec<_>>()
            .join("|"),
        XenValue::FeatureBitmap { words, flags } => format!(
            "{} ({})",
            words
                .iter()
                .map(|w| format!("{w:#010x}"))
                .collect::<Vec<_>>()
                .join(" "),
            flags.join(", ")
        ),
        XenValue::MaskValues(p) => p
            .iter()
            .map(|p| format!("mask={:#x} value={:#x}", p.mask, p.value))
            .collect::<Vec<_>>()
            .join(", "),
        XenValue::Reloc(r) => {
            let mut s = format!("align={:#x} min={:#x} max={:#x}", r.align, r.min, r.max);
            if !r.defaulted.is_empty() {
                let _ = write!(s, " (Xen defaults for {})", r.defaulted.join(", "));
            }
            s
        }
        XenValue::Raw(h) => format!("raw {h}"),
    }
}

fn entry_name(k: EntryKind) -> &'static str {
    match k {
        EntryKind::Pvh => "PVH",
        EntryKind::Linux64 => "Linux 64-bit",
        EntryKind::Linux32 => "Linux 32-bit",
        EntryKind::Multiboot => "multiboot",
        EntryKind::Elf => "ELF e_entry",
    }
}

/// The human report.
pub fn text(file: &Path, r: &Report) -> String {
    let mut o = String::new();
    let what = match r.format {
        Format::Elf => format!(
            "ELF{} {}-endian {}",
            r.elf_class.unwrap_or(0),
            match r.elf_byte_order {
                Some(elfnote::ByteOrder::Big) => "big",
                _ => "little",
            },
            r.elf_machine.unwrap_or("unknown")
        ),
        Format::Bzimage => {
            let bz = r.bzimage.as_ref();
            let mut s = format!(
                "bzImage, boot protocol {}",
                bz.map_or("?", |b| b.protocol.as_str())
            );
            if bz.is_some_and(|b| b.efi_stub) {
                s.push_str(", EFI stub");
            }
            if let Some(c) = bz.and_then(|b| b.compression) {
                let _ = write!(s, ", {c} payload");
            }
            s
        }
        Format::Multiboot => "flat multiboot v1 image".into(),
        Format::Multiboot2 => "flat multiboot2 image (not bootable by anyboot)".into(),
    };
    let _ = writeln!(o, "{}: {what}", file.display());
    row(&mut o, "file size", format_args!("{} bytes", r.file_size));
    if let Some(os) = &r.guest_os {
        row(&mut o, "guest OS", os);
    }
    if let Some(v) = r.bzimage.as_ref().and_then(|b| b.kernel_version.as_ref()) {
        row(&mut o, "kernel version", v);
    }

    let _ = writeln!(o, "\nentry points");
    if r.entry_points.is_empty() {
        row(&mut o, "none", "no bootable entry found");
    }
    for e in &r.entry_points {
        let addr = if e.relative {
            format!("load + {:#x}", e.address)
        } else {
            format!("{:#x}", e.address)
        };
        let _ = writeln!(
            o,
            "  {:<W$} {addr:<16} {}",
            entry_name(e.protocol),
            clean(&e.source)
        );
    }

    if let Some(class) = r.elf_class {
        let title = if r.format == Format::Bzimage {
            "\ninner vmlinux"
        } else {
            "\nELF"
        };
        let _ = writeln!(o, "{title}");
        row(
            &mut o,
            "class",
            format_args!(
                "ELF{class} {}-endian, machine {}",
                match r.elf_byte_order {
                    Some(elfnote::ByteOrder::Big) => "big",
                    _ => "little",
                },
                r.elf_machine.unwrap_or("unknown")
            ),
        );
        row(
            &mut o,
            "program headers",
            format_args!(
                "{} ({} PT_LOAD, {} PT_NOTE)",
                r.segments.len(),
                r.segments.iter().filter(|s| s.is_load()).count(),
                r.segments.iter().filter(|s| s.is_note()).count()
            ),
        );
        if let Some(id) = &r.build_id {
            row(&mut o, "build-id", id);
        }
    }

    if !r.xen_notes.is_empty() {
        let _ = writeln!(o, "\nXen notes");
        for n in &r.xen_notes {
            let mut v = value_text(&n.value);
            if matches!(n.value, XenValue::Number(_)) {
                let _ = write!(v, " ({} bytes)", n.desc_size);
            }
            row(&mut o, n.name, v);
        }
    }
    if let Some(g) = &r.xen_guest {
        let _ = writeln!(o, "\n__xen_guest (legacy Xen PV)");
        row(&mut o, "string", &g.raw);
    }
    if !r.other_notes.is_empty() {
        let _ = writeln!(o, "\nother notes");
        for n in &r.other_notes {
            let label = format!("{} {}", n.owner, n.name.unwrap_or("type"));
            let v = n
                .text
                .clone()
                .unwrap_or_else(|| format!("type {:#x}: {}", n.n_type, n.desc));
            row(&mut o, &label, v);
        }
    }

    if let Some(b) = &r.bzimage {
        let _ = writeln!(o, "\nbzImage");
        row(&mut o, "protocol", &b.protocol);
        row(&mut o, "loadflags", b.loadflags.join(" "));
        row(&mut o, "xloadflags", b.xloadflags.join(" "));
        row(
            &mut o,
            "setup",
            format_args!(
                "{} sectors, protected-mode code at file offset {:#x}",
                b.setup_sects, b.protected_mode_offset
            ),
        );
        if let Some(p) = b.pref_address {
            row(&mut o, "pref_address", format_args!("{p:#x}"));
        }
        if let Some(i) = b.init_size {
            row(
                &mut o,
                "init_size",
                format_args!("{i:#x} ({} MiB)", i >> 20),
            );
        }
        row(
            &mut o,
            "alignment",
            format_args!(
                "{:#x}{}",
                b.kernel_alignment,
                if b.relocatable { ", relocatable" } else { "" }
            ),
        );
        row(&mut o, "cmdline_size", b.cmdline_size);
        row(
            &mut o,
            "initrd_addr_max",
            format_args!("{:#x}", b.initrd_addr_max),
        );
        if b.efi_stub {
            let h = b
                .handover_offset
                .map(|h| format!(", EFI handover at {h:#x}"))
                .unwrap_or_default();
            row(
                &mut o,
                "EFI stub",
                format_args!("PE header at {:#x}{h}", b.pe_offset.unwrap_or(0)),
            );
        }
        let _ = writeln!(o, "\npayload");
        match (b.compression, b.payload_offset, b.payload_length) {
            (Some(c), Some(off), Some(len)) => {
                row(&mut o, "compression", c);
                row(
                    &mut o,
                    "location",
                    format_args!("file offset {off:#x}, {len} bytes"),
                );
                if let Some(d) = b.decompressed_size {
                    row(
                        &mut o,
                        "decompressed size",
                        format_args!("{d} bytes (trailer)"),
                    );
                }
                if let Some(read) = b.decompressed_read {
                    row(
                        &mut o,
                        "decoded to inspect",
                        format_args!("{read} bytes (up to the last note)"),
                    );
                }
            }
            _ => row(
                &mut o,
                "none",
                "protocol older than 2.08: no payload fields",
            ),
        }
    }

    if let Some(m) = &r.multiboot {
        let _ = writeln!(o, "\nmultiboot v1");
        row(
            &mut o,
            "header",
            format_args!("at file offset {:#x}", m.offset),
        );
        row(
            &mut o,
            "flags",
            format_args!("{:#x} ({})", m.flags, m.flag_names.join(" ")),
        );
        if let Some(k) = &m.aout_kludge {
            row(
                &mut o,
                "a.out kludge",
                format_args!(
                    "header {:#x} load {:#x}-{:#x} bss end {:#x} entry {:#x}",
                    k.header_addr, k.load_addr, k.load_end_addr, k.bss_end_addr, k.entry_addr
                ),
            );
        }
        for p in &m.problems {
            row(&mut o, "problem", p);
        }
    }
    if let Some(m) = &r.multiboot2 {
        let _ = writeln!(o, "\nmultiboot2 (detected, not bootable by anyboot)");
        row(
            &mut o,
            "header",
            format_args!(
                "at file offset {:#x}, architecture {}, length {}",
                m.offset, m.architecture, m.header_length
            ),
        );
    }
    o
}

/// The human plan.
pub fn plan_text(p: &loader::plan::BootPlan) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{}: boot by {} ({} profile)",
        p.kernel.display(),
        p.protocol.name(),
        format!("{:?}", p.os.kind).to_lowercase()
    );
    row(&mut o, "why", &p.reason);
    row(&mut o, "OS profile", &p.os.reason);
    if let Some(e) = &p.extraction {
        row(
            &mut o,
            "boot image",
            format_args!(
                "{} (the inner vmlinux, {} bytes, extracted from the bzImage)",
                e.to.display(),
                e.size
            ),
        );
    }
    row(&mut o, "entry", format_args!("{:#x}", p.entry));
    row(
        &mut o,
        "kernel range",
        format_args!("{:#x}..{:#x}", p.kernel_range.0, p.kernel_range.1),
    );
    let _ = writeln!(o, "\nsegments (file -> guest)");
    for s in &p.segments {
        let _ = writeln!(
            o,
            "  {:#010x}+{:#x} -> {:#x}  ({:#x} bytes in memory, {:#x} zeroed)",
            s.file_offset,
            s.file_size,
            s.guest_addr,
            s.mem_size,
            s.mem_size.saturating_sub(s.file_size)
        );
    }
    let _ = writeln!(
        o,
        "\nmemory ({} MiB, {} vCPU{})",
        p.memory.size_mib,
        p.cpus,
        if p.cpus == 1 { "" } else { "s" }
    );
    for r in &p.memory.map {
        let _ = writeln!(o, "  {:#012x}..{:#012x}  {:?}", r.start, r.end(), r.kind);
    }
    let _ = writeln!(o, "\nboot structures");
    for b in &p.boot_structures {
        let _ = writeln!(o, "  {:#08x}  {:>6} bytes  {}", b.addr, b.size, b.what);
    }
    for m in &p.modules {
        let _ = writeln!(
            o,
            "  {:#08x}  {:>6} bytes  {} {}",
            m.addr,
            m.size,
            m.role,
            m.path.display()
        );
    }
    let _ = writeln!(o);
    row(&mut o, "command line", format_args!("{:?}", p.cmdline));
    row(
        &mut o,
        "limit",
        format_args!(
            "{} bytes ({})",
            p.os.cmdline_limit, p.os.cmdline_limit_source
        ),
    );
    if let Some(c) = p.os.console {
        row(&mut o, "console", c);
    }
    for d in &p.disks {
        row(
            &mut o,
            "disk",
            format_args!(
                "{}{}",
                d.path.display(),
                if d.read_only { " (read-only)" } else { "" }
            ),
        );
    }
    o
}
