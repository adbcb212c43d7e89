//! Boot the probe guests (`tests/guests/`, built by `anyboot-fixtures`) under QEMU with TCG
//! and hold their reports against what the test itself knows: the command line it passed,
//! the length and FNV-1a checksum of the initrd it wrote, the RAM and CPUs it gave QEMU.
//! QEMU's loaders (SeaBIOS + the PVH and multiboot option ROMs on `-M pc`, qboot on
//! `-M microvm`) are the reference the same guests are later booted against with
//! `anyboot run`; `anyboot_fixtures::guests` says which report keys are comparable.
//!
//! Also: every guest is planned by `anyboot plan` with the protocol it was built for, and a
//! guest whose ELF makes a loader copy file bytes into its BSS reports exactly `fails=bss`
//! (the checks can fail).
//!
//! Needs `qemu-system-x86_64` and, to build the guests, `cc` and `ld`; each is skipped loudly
//! when missing unless `ANYBOOT_REQUIRE_ORACLES=1`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyboot_fixtures::guests::{
    EXIT_FAIL, EXIT_PASS, GUESTS, ProbeReport, fnv1a32, guest_or_skip, protocol, qemu_argv,
    test_initrd,
};
use anyboot_fixtures::kernels::tool_or_skip;
use anyboot_fixtures::qemu::{QemuRun, run_qemu};
use anyboot_fixtures::scratch;

/// A guest run takes well under a second under TCG; anything near this is a hang.
const TIMEOUT: Duration = Duration::from_secs(60);
/// RAM given to QEMU, MiB.
const MEM_MIB: u64 = 128;
/// A command line with blanks, quotes and shell and printf metacharacters: every loader must
/// hand it over verbatim.
const CMDLINE: &str = r#"console=ttyS0 anyboot.probe="a b" x$HOME;'q'`id`\n%s*&|<>"#;
/// Initrd length: not a multiple of 4, so the guest's checksum loop runs its byte tail.
const INITRD_LEN: usize = 40_003;

const PVH_CHECKS: &[&str] = &[
    "bss", "magic", "version", "cr0", "cr4", "eflags", "cs", "ds", "memmap", "flat", "cmdline",
];
const MULTIBOOT_CHECKS: &[&str] = &[
    "bss", "magic", "mem", "cr0", "eflags", "cs", "ds", "memmap", "flat", "cmdline",
];

/// One QEMU boot of a guest.
struct Boot<'a> {
    guest: &'a str,
    /// `-M` value.
    machine: &'a str,
    /// Number of CPUs, each in its own socket (SeaBIOS lists one MP-table entry per socket).
    cpus: u32,
    append: &'a str,
    initrd: Option<&'a [u8]>,
}

/// What a boot produced.
struct Booted {
    kernel: PathBuf,
    run: QemuRun,
    report: ProbeReport,
}

impl Boot<'_> {
    fn new(guest: &str) -> Boot<'_> {
        Boot {
            guest,
            machine: "pc",
            cpus: 1,
            append: CMDLINE,
            initrd: None,
        }
    }

    /// Run QEMU; `None` if QEMU or the guest is not available here (after a SKIPPED line).
    fn run(&self) -> Option<Booted> {
        let kernel = guest_or_skip(self.guest)?;
        self.run_kernel(&kernel)
    }

    fn run_kernel(&self, kernel: &Path) -> Option<Booted> {
        let qemu = tool_or_skip("qemu-system-x86_64")?;
        let initrd = self.initrd.map(|data| {
            let path = scratch("initrd.img");
            // QEMU's multiboot loader splits -initrd at commas and takes a blank as the start
            // of module arguments.
            assert!(
                !path.to_string_lossy().contains([',', ' ']),
                "scratch path unusable as a QEMU -initrd: {}",
                path.display()
            );
            fs::write(&path, data).unwrap();
            path
        });
        let argv = qemu_argv(
            &qemu,
            kernel,
            self.machine,
            self.cpus,
            MEM_MIB,
            self.append,
            initrd.as_deref(),
        );
        let run = run_qemu(&argv, TIMEOUT);
        eprintln!(
            "{} on {} ({} CPUs): {:.2?}, status {:?}",
            self.guest, self.machine, self.cpus, run.elapsed, run.status
        );
        let report = ProbeReport::parse(&run.output).unwrap_or_else(|| {
            panic!(
                "{}: no well-formed ANYBOOT-PROBE report (timed out: {}, status {:?})\nargv: {argv:?}\n--- output ---\n{}",
                self.guest, run.timed_out, run.status, run.output
            )
        });
        Some(Booted {
            kernel: kernel.to_owned(),
            run,
            report,
        })
    }
}

impl Booted {
    fn context(&self) -> String {
        format!("--- output ---\n{}", self.run.output)
    }

    fn exit_code(&self) -> Option<i32> {
        if self.run.timed_out {
            None
        } else {
            self.run.status.and_then(|s| s.code())
        }
    }

    /// The report passed, QEMU exited with the pass status, and the protocol-level facts match
    /// what was passed in.
    fn assert_pass(&self, boot: &Boot<'_>, expected_checks: &[&str], expected_cmdline: &str) {
        let r = &self.report;
        let ctx = self.context();
        assert!(
            r.passed(),
            "{}: failed checks {:?}\n{ctx}",
            boot.guest,
            r.fails()
        );
        assert_eq!(self.exit_code(), Some(EXIT_PASS), "{ctx}");
        assert_eq!(r.get("guest"), Some(boot.guest), "{ctx}");
        assert_eq!(r.get("proto"), protocol(boot.guest), "{ctx}");
        assert_eq!(r.checks(), expected_checks, "{ctx}");
        assert_eq!(r.cmdline, expected_cmdline, "{ctx}");
        assert_eq!(
            r.num("cmdline_len"),
            Some(expected_cmdline.len() as u64),
            "{ctx}"
        );
        match boot.initrd {
            Some(data) => {
                assert_eq!(r.num("mods"), Some(1), "{ctx}");
                assert_eq!(r.num("initrd_len"), Some(data.len() as u64), "{ctx}");
                let sum = format!("{:#010x}", fnv1a32(data));
                assert_eq!(
                    r.get("initrd_sum"),
                    Some(sum.as_str()),
                    "initrd checksum\n{ctx}"
                );
            }
            None => {
                assert_eq!(r.num("mods"), Some(0), "{ctx}");
                assert_eq!(r.get("initrd_len"), None, "{ctx}");
                assert_eq!(r.get("initrd_sum"), None, "{ctx}");
            }
        }
        // The usable RAM the memory map describes: all of -m but the firmware's reservations
        // (at most 8 MiB here), never more.
        let mem_kib = r.num("mem_kib").expect("mem_kib");
        assert!(
            mem_kib <= MEM_MIB * 1024 && mem_kib > (MEM_MIB - 8) * 1024,
            "mem_kib {mem_kib} for -m {MEM_MIB}\n{ctx}"
        );
        if boot.append.split(' ').any(|w| w == "smp") {
            assert_eq!(r.num("cpus"), Some(u64::from(boot.cpus)), "{ctx}");
            assert_eq!(r.num("mp_cpus"), Some(u64::from(boot.cpus)), "{ctx}");
        } else {
            assert_eq!(r.get("cpus"), None, "{ctx}");
        }
    }
}

/// The checks a PVH or multiboot guest runs for these inputs, in order.
fn checks(base: &[&'static str], initrd: bool, smp: bool) -> Vec<&'static str> {
    let mut v = base.to_vec();
    if initrd {
        v.push("initrd");
    }
    v.push("layout");
    if smp {
        v.push("smp");
    }
    v
}

/// An initrd whose checksum has a leading zero hex digit: the guests print all 8 digits.
fn initrd_with_small_sum() -> Vec<u8> {
    (0..)
        .map(|seed| test_initrd(INITRD_LEN, seed))
        .find(|d| fnv1a32(d) < 0x1000_0000)
        .unwrap()
}

#[test]
fn pvh32_on_pc() {
    let initrd = initrd_with_small_sum();
    let boot = Boot {
        initrd: Some(&initrd),
        ..Boot::new("pvh32")
    };
    let Some(b) = boot.run() else { return };
    b.assert_pass(&boot, &checks(PVH_CHECKS, true, false), CMDLINE);
    assert_eq!(b.report.num("magic"), Some(0x336e_c578));
}

#[test]
fn pvh64_on_pc() {
    let initrd = test_initrd(INITRD_LEN, 2);
    let boot = Boot {
        initrd: Some(&initrd),
        ..Boot::new("pvh64")
    };
    let Some(b) = boot.run() else { return };
    b.assert_pass(&boot, &checks(PVH_CHECKS, true, false), CMDLINE);
}

#[test]
fn multiboot_on_pc() {
    let initrd = test_initrd(INITRD_LEN, 3);
    let boot = Boot {
        initrd: Some(&initrd),
        ..Boot::new("multiboot")
    };
    let Some(b) = boot.run() else { return };
    // QEMU, like GRUB, puts the kernel's file name and a blank before the command line.
    let expected = format!("{} {CMDLINE}", b.kernel.display());
    b.assert_pass(&boot, &checks(MULTIBOOT_CHECKS, true, false), &expected);
    assert_eq!(b.report.num("magic"), Some(0x2bad_b002));
}

#[test]
fn pvh32_starts_a_second_cpu_on_pc() {
    let append = format!("{CMDLINE} smp");
    let boot = Boot {
        cpus: 2,
        append: &append,
        ..Boot::new("pvh32")
    };
    let Some(b) = boot.run() else { return };
    b.assert_pass(&boot, &checks(PVH_CHECKS, false, true), &append);
}

#[test]
fn multiboot_starts_two_more_cpus_on_pc() {
    let append = "smp";
    let boot = Boot {
        cpus: 3,
        append,
        ..Boot::new("multiboot")
    };
    let Some(b) = boot.run() else { return };
    let expected = format!("{} {append}", b.kernel.display());
    b.assert_pass(&boot, &checks(MULTIBOOT_CHECKS, false, true), &expected);
}

#[test]
fn pvh_on_microvm() {
    for (guest, seed) in [("pvh32", 4), ("pvh64", 5)] {
        let initrd = test_initrd(INITRD_LEN, seed);
        let boot = Boot {
            machine: "microvm",
            initrd: Some(&initrd),
            ..Boot::new(guest)
        };
        let Some(b) = boot.run() else { return };
        b.assert_pass(&boot, &checks(PVH_CHECKS, true, false), CMDLINE);
    }
}

/// qboot (microvm's firmware) writes an MP table whose header entry count is 0 although it
/// lists every CPU; the guests walk it by length as Linux does, start the CPUs, and fail `smp`
/// on the count (FreeBSD walks by count). The verdict must follow the facts either way.
#[test]
fn pvh32_smp_verdict_on_microvm_follows_the_mp_table() {
    let boot = Boot {
        machine: "microvm",
        cpus: 2,
        append: "smp",
        ..Boot::new("pvh32")
    };
    let Some(b) = boot.run() else { return };
    let r = &b.report;
    let ctx = b.context();
    assert_eq!(r.num("cpus"), Some(2), "{ctx}");
    assert_eq!(r.num("mp_cpus"), Some(2), "{ctx}");
    let count_ok = r.num("mp_count") == r.num("mp_entries");
    assert_eq!(r.fails().contains(&"smp"), !count_ok, "{ctx}");
    let others: Vec<&str> = r.fails().into_iter().filter(|&f| f != "smp").collect();
    assert!(others.is_empty(), "{ctx}");
    let expected = if count_ok { EXIT_PASS } else { EXIT_FAIL };
    assert_eq!(b.exit_code(), Some(expected), "{ctx}");
}

#[test]
fn pvh32_without_initrd_or_command_line() {
    let boot = Boot {
        append: "",
        ..Boot::new("pvh32")
    };
    let Some(b) = boot.run() else { return };
    b.assert_pass(&boot, &checks(PVH_CHECKS, false, false), "");
}

/// A copy of pvh32 whose PT_LOAD claims `p_filesz = p_memsz`: QEMU then loads the bytes that
/// follow the loadable part in the file (0xa5 filler, symbol tables) where .bss lives, exactly
/// what a loader that ignores `p_filesz` would do. The guest must report that and nothing else.
#[test]
fn bss_check_catches_file_bytes_in_bss() {
    let Some(path) = guest_or_skip("pvh32") else {
        return;
    };
    let mut elf = fs::read(&path).unwrap();
    assert_eq!(&elf[..5], b"\x7fELF\x01", "pvh32 is an ELF32");
    let u16_at = |b: &[u8], o: usize| usize::from(u16::from_le_bytes([b[o], b[o + 1]]));
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let (phoff, phentsize, phnum) = (
        u32_at(&elf, 0x1c) as usize,
        u16_at(&elf, 0x2a),
        u16_at(&elf, 0x2c),
    );
    let load = (0..phnum)
        .map(|i| phoff + i * phentsize)
        .find(|&ph| u32_at(&elf, ph) == 1)
        .expect("a PT_LOAD");
    let (offset, filesz, memsz) = (
        u32_at(&elf, load + 4),
        u32_at(&elf, load + 16),
        u32_at(&elf, load + 20),
    );
    assert!(memsz > filesz, "pvh32 has a .bss");
    elf[load + 16..load + 20].copy_from_slice(&memsz.to_le_bytes());
    let end = (offset + memsz) as usize;
    if elf.len() < end {
        elf.resize(end, 0);
    }
    let patched = scratch("pvh32-bss-from-file");
    fs::write(&patched, &elf).unwrap();

    let boot = Boot::new("pvh32");
    let Some(b) = boot.run_kernel(&patched) else {
        return;
    };
    let ctx = b.context();
    assert_eq!(b.report.fails(), ["bss"], "{ctx}");
    assert_eq!(b.exit_code(), Some(EXIT_FAIL), "{ctx}");
    assert_eq!(
        b.report.cmdline, CMDLINE,
        "the other checks still ran\n{ctx}"
    );
}

/// Every guest is planned by anyboot with the protocol it was built for, entered where its
/// header says: PVH at the PHYS32_ENTRY, multiboot and the ELF Linux guest at `e_entry`, the
/// bzImage at its protected-mode start + 0x200.
#[test]
fn anyboot_plans_each_guest_by_its_protocol() {
    for guest in GUESTS {
        let Some(path) = guest_or_skip(guest) else {
            return;
        };
        let out = Command::new(assert_cmd::cargo::cargo_bin!("anyboot"))
            .args(["plan", "--json"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{guest}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let image = fs::read(&path).unwrap();
        let (proto, entry) = match guest {
            "pvh32" | "pvh64" => ("pvh", 0x10_0000),
            "multiboot" => ("multiboot", elf_entry(&image)),
            "elf64" => ("linux64", elf_entry(&image)),
            "bzimage64" => ("linux64", 0x10_0200),
            _ => unreachable!("{guest}"),
        };
        assert_eq!(plan["protocol"], proto, "{guest}: {plan}");
        assert_eq!(plan["entry"], entry, "{guest}: {plan}");
        assert_eq!(plan["kernel_range"][0], 0x10_0000, "{guest}: {plan}");
    }
}

/// `e_entry` of an ELF32 or ELF64 little-endian image.
fn elf_entry(image: &[u8]) -> u64 {
    assert_eq!(&image[..4], b"\x7fELF");
    if image[4] == 2 {
        u64::from_le_bytes(image[0x18..0x20].try_into().unwrap())
    } else {
        u64::from(u32::from_le_bytes(image[0x18..0x1c].try_into().unwrap()))
    }
}
