//! `loader::mptable` against oracles that share no code with it:
//!
//! - a parser written here from the text of the Intel MultiProcessor Specification 1.4
//!   (§4.1 floating pointer, §4.2 header, §4.3 entries), reading raw offsets, never the
//!   module's structures, for every CPU count 1..=255;
//! - dmidecode's `biosdecode`, which finds and decodes the floating pointer in a memory dump
//!   (it scans 0xf0000..0x100000 and checks the checksum);
//! - `x86info --mptable` (Debian's x86info; the code is FreeBSD's `mptable(8)` ported to
//!   Linux), which follows the BIOS data area's EBDA pointer to the floating pointer, follows
//!   its `physptr` to the `PCMP` header and lists the processor entries (APIC id, version,
//!   BSP/AP, usable, CPU signature, feature flags). It checks no checksum and reads only the
//!   processor entries (they come first), so it confirms the placement, the pointer and the
//!   processor layout that starting the APs depends on. It reads only `/dev/mem`, so it runs
//!   in a private mount namespace (root, as in CI) with a memory dump mounted there.
//!
//! No Debian tool decodes the rest of the configuration table from a dump; Linux's
//! `mpparse.c` in a guest that starts the APs it lists is the end-to-end oracle.

use std::collections::BTreeSet;
use std::process::Command;

use anyboot_fixtures::kernels::{require_oracles, skipped, tool_or_skip};
use anyboot_fixtures::scratch;
use loader::layout::{MPTABLE_ADDR, MPTABLE_MAX};
use loader::mptable::{MpTableError, mptable};

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes(b[off..off + 2].try_into().unwrap())
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

fn byte_sum(b: &[u8]) -> u8 {
    b.iter().fold(0u8, |s, x| s.wrapping_add(*x))
}

#[derive(Debug, PartialEq, Eq)]
struct Cpu {
    apic_id: u8,
    apic_version: u8,
    enabled: bool,
    bsp: bool,
    signature: u32,
    features: u32,
}

#[derive(Debug, PartialEq, Eq)]
struct Assignment {
    int_type: u8,
    flags: u16,
    source_bus: u8,
    source_irq: u8,
    dest_id: u8,
    dest_pin: u8,
}

#[derive(Debug, Default)]
struct Parsed {
    physptr: u32,
    oem: Vec<u8>,
    product: Vec<u8>,
    local_apic: u32,
    cpus: Vec<Cpu>,
    buses: Vec<(u8, Vec<u8>)>,
    /// (id, version, enabled, address)
    ioapics: Vec<(u8, u8, bool, u32)>,
    io_ints: Vec<Assignment>,
    local_ints: Vec<Assignment>,
}

/// Parse `bytes` placed at guest-physical `at`, asserting every rule of the specification.
fn parse(bytes: &[u8], at: u64) -> Parsed {
    // §4.1: the floating pointer.
    let fp = &bytes[..16];
    assert_eq!(&fp[0..4], b"_MP_");
    assert_eq!(fp[8], 1, "length in 16-byte paragraphs");
    assert_eq!(fp[9], 4, "spec revision 1.4");
    assert_eq!(byte_sum(fp), 0, "floating pointer checksum");
    assert_eq!(
        fp[11], 0,
        "feature byte 1: 0 means a configuration table is present"
    );
    assert_eq!(fp[12] & 0x7f, 0, "feature byte 2 bits 0-6 are reserved");
    assert_eq!(&fp[13..16], &[0, 0, 0], "feature bytes 3-5 are reserved");
    let physptr = u32_at(fp, 4);
    assert_eq!(u64::from(physptr), at + 16, "table right after the pointer");

    // §4.2: the configuration table header.
    let t = &bytes[16..];
    assert_eq!(&t[0..4], b"PCMP");
    let base_len = usize::from(u16_at(t, 4));
    assert_eq!(
        base_len,
        t.len(),
        "base table length covers header and entries"
    );
    assert_eq!(t[6], 4, "spec revision 1.4");
    assert_eq!(byte_sum(&t[..base_len]), 0, "base table checksum");
    assert_eq!(u32_at(t, 28), 0, "no OEM table");
    assert_eq!(u16_at(t, 32), 0, "no OEM table");
    let count = usize::from(u16_at(t, 34));
    assert_eq!(u16_at(t, 40), 0, "no extended table");
    assert_eq!(t[42], 0, "extended table checksum of nothing");
    let mut p = Parsed {
        physptr,
        oem: t[8..16].to_vec(),
        product: t[16..28].to_vec(),
        local_apic: u32_at(t, 36),
        ..Parsed::default()
    };

    // §4.3: entries, sorted by type; processors are 20 bytes, the rest 8.
    let mut off = 44;
    let mut last_type = 0;
    for i in 0..count {
        let ty = t[off];
        assert!(
            ty >= last_type,
            "entry {i}: type {ty} after type {last_type}"
        );
        last_type = ty;
        let len = if ty == 0 { 20 } else { 8 };
        let e = &t[off..off + len];
        match ty {
            0 => {
                assert_eq!(&e[12..20], &[0; 8], "reserved bytes");
                assert_eq!(e[3] & !3, 0, "CPU flags bits 2-7 are reserved");
                p.cpus.push(Cpu {
                    apic_id: e[1],
                    apic_version: e[2],
                    enabled: e[3] & 1 != 0,
                    bsp: e[3] & 2 != 0,
                    signature: u32_at(e, 4),
                    features: u32_at(e, 8),
                });
            }
            1 => p.buses.push((e[1], e[2..8].to_vec())),
            2 => p.ioapics.push((e[1], e[2], e[3] & 1 != 0, u32_at(e, 4))),
            3 | 4 => {
                let a = Assignment {
                    int_type: e[1],
                    flags: u16_at(e, 2),
                    source_bus: e[4],
                    source_irq: e[5],
                    dest_id: e[6],
                    dest_pin: e[7],
                };
                if ty == 3 {
                    p.io_ints.push(a);
                } else {
                    p.local_ints.push(a);
                }
            }
            _ => panic!("entry {i}: unknown type {ty}"),
        }
        off += len;
    }
    assert_eq!(off, base_len, "entry count and base length agree");
    p
}

/// Everything the table must say about `n` CPUs.
fn check_contents(p: &Parsed, n: u32) {
    assert_eq!(p.oem, b"ANYBOOT ");
    assert_eq!(p.product, b"ANYBOOT     ");
    assert_eq!(p.local_apic, 0xfee0_0000);

    assert_eq!(p.cpus.len(), n as usize);
    for (i, cpu) in p.cpus.iter().enumerate() {
        assert_eq!(usize::from(cpu.apic_id), i);
        assert_eq!(cpu.apic_version, 0x14, "integrated xAPIC");
        assert!(cpu.enabled);
        assert_eq!(cpu.bsp, i == 0, "exactly CPU 0 is the BSP");
        assert_eq!((cpu.signature >> 8) & 0xf, 6, "family 6");
        assert_eq!(cpu.features & (1 << 9), 1 << 9, "APIC feature flag");
        assert_eq!(cpu.features & 1, 1, "FPU feature flag");
    }

    assert_eq!(p.buses.len(), 1);
    let (isa, ref name) = p.buses[0];
    assert_eq!(name, b"ISA   ");

    assert_eq!(p.ioapics.len(), 1);
    let (ioapic_id, version, enabled, address) = p.ioapics[0];
    assert_eq!(
        u32::from(ioapic_id),
        n,
        "IOAPIC id is the first after the CPUs"
    );
    assert!(
        p.cpus.iter().all(|c| c.apic_id != ioapic_id),
        "IOAPIC id collides with a CPU"
    );
    assert_eq!(version, 0x11);
    assert!(enabled);
    assert_eq!(address, 0xfec0_0000);

    assert_eq!(p.io_ints.len(), 16);
    let irqs: BTreeSet<u8> = p.io_ints.iter().map(|a| a.source_irq).collect();
    assert_eq!(irqs, (0..16).collect(), "each ISA IRQ once");
    for a in &p.io_ints {
        assert_eq!(a.int_type, 0, "vectored INT");
        assert_eq!(a.flags, 0, "polarity and trigger conform to ISA");
        assert_eq!(a.source_bus, isa);
        assert_eq!(a.dest_id, ioapic_id);
        assert_eq!(a.dest_pin, a.source_irq, "KVM's identity GSI routing");
    }

    assert_eq!(
        p.local_ints,
        [
            Assignment {
                int_type: 3, // ExtINT
                flags: 0,
                source_bus: isa,
                source_irq: 0,
                dest_id: 0xff,
                dest_pin: 0,
            },
            Assignment {
                int_type: 1, // NMI
                flags: 0,
                source_bus: isa,
                source_irq: 0,
                dest_id: 0xff,
                dest_pin: 1,
            },
        ]
    );
}

#[test]
fn every_cpu_count_parses_by_the_spec() {
    for n in 1..=255u32 {
        let bytes = mptable(n, MPTABLE_ADDR).unwrap();
        assert!(
            bytes.len() as u64 <= MPTABLE_MAX,
            "{n} CPUs: {}",
            bytes.len()
        );
        let p = parse(&bytes, MPTABLE_ADDR);
        check_contents(&p, n);
        // Size from the spec: pointer 16, header 44, 20 per CPU, 8 per other entry.
        assert_eq!(
            bytes.len(),
            16 + 44 + 20 * n as usize + 8 * (1 + 1 + 16 + 2)
        );
    }
}

#[test]
fn the_table_follows_its_address() {
    let a = mptable(4, MPTABLE_ADDR).unwrap();
    let b = mptable(4, 0xf0000).unwrap();
    assert_eq!(parse(&b, 0xf0000).physptr, 0xf0010);
    // Only the pointer and the floating checksum differ.
    let differ: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    assert!(
        differ.iter().all(|&i| (4..8).contains(&i) || i == 10),
        "{differ:?}"
    );
    // Ending exactly at 4 GiB is fine.
    let len = a.len() as u64;
    let at = (1u64 << 32) - len.next_multiple_of(16);
    parse(&mptable(4, at).unwrap(), at);
}

#[test]
fn refusals() {
    assert_eq!(mptable(0, MPTABLE_ADDR), Err(MpTableError::NoCpus));
    assert_eq!(
        mptable(256, MPTABLE_ADDR),
        Err(MpTableError::TooManyCpus { cpus: 256 })
    );
    assert_eq!(
        mptable(u32::MAX, MPTABLE_ADDR),
        Err(MpTableError::TooManyCpus { cpus: u32::MAX })
    );
    for at in [MPTABLE_ADDR + 1, MPTABLE_ADDR + 8, 0xf, u64::MAX] {
        assert_eq!(
            mptable(1, at),
            Err(MpTableError::Misaligned { at }),
            "{at:#x}"
        );
    }
    let len = mptable(255, 0).unwrap().len() as u64;
    let at = (1u64 << 32) - 16;
    assert_eq!(
        mptable(255, at),
        Err(MpTableError::AboveFourGiB { at, end: at + len })
    );
    assert_eq!(
        mptable(1, 1 << 32),
        Err(MpTableError::AboveFourGiB {
            at: 1 << 32,
            end: (1 << 32) + 16 + 44 + 20 + 160
        })
    );
    let at = u64::MAX - 15;
    assert_eq!(
        mptable(1, at),
        Err(MpTableError::AboveFourGiB { at, end: u64::MAX })
    );
    // Messages name the limit.
    assert_eq!(
        MpTableError::TooManyCpus { cpus: 300 }.to_string(),
        "300 CPUs: an MP table describes at most 255 (8-bit APIC ids)"
    );
}

/// A 1 MiB dump of low memory holding `table` at `at`, with the BIOS data area's EBDA segment
/// (0x40e) and base memory size in KiB (0x413) saying 639 KiB, as on a PC.
fn low_memory_dump(table: &[u8], at: u64) -> Vec<u8> {
    let mut mem = vec![0u8; 1 << 20];
    let at = usize::try_from(at).unwrap();
    mem[at..at + table.len()].copy_from_slice(table);
    mem[0x40e..0x410].copy_from_slice(&u16::try_from(MPTABLE_ADDR >> 4).unwrap().to_le_bytes());
    mem[0x413..0x415].copy_from_slice(&639u16.to_le_bytes());
    mem
}

#[test]
fn biosdecode_finds_the_floating_pointer() {
    let Some(biosdecode) = tool_or_skip("biosdecode") else {
        return;
    };
    let run = |mem: &[u8]| -> String {
        let path = scratch("mem.bin");
        std::fs::write(&path, mem).unwrap();
        let out = Command::new(&biosdecode)
            .arg("-d")
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    // biosdecode scans the BIOS area 0xf0000..0x100000 only.
    let at = 0xf0000;
    let table = mptable(3, at).unwrap();
    let text = run(&low_memory_dump(&table, at));
    let block: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "Intel Multiprocessor present.")
        .take(4)
        .map(str::trim)
        .collect();
    assert_eq!(
        block,
        [
            "Intel Multiprocessor present.",
            "Specification Revision: 1.4",
            "Configuration Table Address: 0x000F0010",
            "Mode: Virtual Wire",
        ],
        "biosdecode said:\n{text}"
    );
    // Negative control: with one byte changed the checksum fails and biosdecode says nothing.
    let mut bad = table.clone();
    bad[13] = 1;
    let text = run(&low_memory_dump(&bad, at));
    assert!(!text.contains("Multiprocessor"), "{text}");
}

/// Runs `x86info --mptable` with `mem` as `/dev/mem`, in a private mount namespace (needs
/// root, as CI is). `None` after a loud skip if the namespace cannot be made.
fn x86info_mptable(x86info: &std::path::Path, mem: &[u8]) -> Option<String> {
    let path = scratch("mem.bin");
    std::fs::write(&path, mem).unwrap();
    let unshare = tool_or_skip("unshare")?;
    let out = Command::new(unshare)
        .args(["--mount", "--propagation", "private", "sh", "-euc"])
        .arg(
            "mount -t tmpfs anyboot-test /dev && : > /dev/mem && mount --bind \"$1\" /dev/mem \
             && echo NAMESPACE-READY >&2 && exec \"$2\" --mptable",
        )
        .arg("sh")
        .arg(&path)
        .arg(x86info)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stderr.contains("NAMESPACE-READY") {
        let msg = format!("cannot mount a memory dump on /dev/mem for x86info: {stderr}");
        if require_oracles() {
            panic!("ANYBOOT_REQUIRE_ORACLES=1 but {msg}");
        }
        skipped(&msg);
        return None;
    }
    assert!(out.status.success(), "x86info failed: {stderr}");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn x86info_lists_the_processors() {
    let Some(x86info) = tool_or_skip("x86info") else {
        return;
    };
    for n in [1u32, 5, 255] {
        let mem = low_memory_dump(&mptable(n, MPTABLE_ADDR).unwrap(), MPTABLE_ADDR);
        let Some(text) = x86info_mptable(&x86info, &mem) else {
            return;
        };
        // "#  <APIC id>  <version>  BSP|AP, usable|unusable  <family> <model> <step> <flags>"
        let rows: Vec<Vec<&str>> = text
            .lines()
            .skip_while(|l| *l != "MP Table:")
            .skip(2)
            .take_while(|l| l.starts_with('#'))
            .map(|l| l.split_whitespace().skip(1).collect())
            .collect();
        let want: Vec<Vec<String>> = (0..n)
            .map(|i| {
                let role = if i == 0 { "BSP," } else { "AP," };
                [
                    &i.to_string(),
                    "0x14",
                    role,
                    "usable",
                    "6",
                    "0",
                    "0",
                    "0x0201",
                ]
                .map(str::to_owned)
                .to_vec()
            })
            .collect();
        assert_eq!(rows, want, "{n} CPUs; x86info said:\n{text}");
    }
}
