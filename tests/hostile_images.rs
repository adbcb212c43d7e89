//! The hostile-image corpus: a few hundred broken kernel images built at test time (empty and
//! one-byte files, seeded random bytes, every truncation of a synthetic bzImage's header region,
//! extreme values in each setup-header byte and in its size and offset fields, ELF images with
//! absurd program headers and notes, multiboot a.out-kludge addresses that make no sense, and,
//! when `cargo xtask kernels` has run, truncations of Debian's cloud kernel), fed to every CLI
//! command.
//!
//! For each image and command anyboot must never panic (status 101 or a signal), never hang
//! (killed after [`DEADLINE`]) and never end with status 1. A refused image gives status 2,
//! nothing on stdout and exactly one stderr line, `anyboot: <path>: ...`. An image that is still
//! valid after its mutation may succeed: `inspect`, `plan`, `emit` and `check` with 0 (and
//! valid JSON where `--json`/`--format json` was asked for), `run` with 0, 3, 4, 124 or a
//! debug-exit status `(v << 1) | 1`.
//!
//! All violations are collected and reported together at the end.

// Test images are small: their sizes always fit the narrower integer types.
#![allow(clippy::cast_possible_truncation)]

use std::fs::{self, File};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyboot_fixtures::kernels::{kernel_or_skip, kvm_or_skip};
use anyboot_fixtures::{
    BzSpec, ElfSpec, LoadSpec, NoteSpec, PvhSpec, build_elf, bzimage, multiboot_flat, pvh_elf,
    scratch, uint,
};

/// A command that has not ended after this long is a hang: it is killed and reported.
const DEADLINE: Duration = Duration::from_secs(20);

/// Worker threads running anyboot processes.
const WORKERS: usize = 4;

/// Known bugs: (image name prefix, command name, what goes wrong). A violation matching an
/// entry is printed as KNOWN instead of failing the test, so the bug stays visible until it is
/// fixed; then its entry must go.
// Found by this test and fixed: a relocatable bzImage with pref_address 0xffffffffffffffff
// made loader::plan::segments overflow computing the 64-bit entry (a panic in debug builds,
// a wrapped entry in release); it is now refused with exit status 2.
const KNOWN_BUGS: &[(&str, &str, &str)] = &[];

/// The commands run on each image, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmd {
    Inspect,
    InspectJson,
    PlanJson,
    EmitQemu,
    EmitXl,
    EmitFirecracker,
    EmitCloudHypervisor,
    CheckJson,
    RunKvm,
}

impl Cmd {
    /// Every command but `run`.
    const STATIC: [Cmd; 8] = [
        Cmd::Inspect,
        Cmd::InspectJson,
        Cmd::PlanJson,
        Cmd::EmitQemu,
        Cmd::EmitXl,
        Cmd::EmitFirecracker,
        Cmd::EmitCloudHypervisor,
        Cmd::CheckJson,
    ];

    fn name(self) -> &'static str {
        match self {
            Cmd::Inspect => "inspect",
            Cmd::InspectJson => "inspect --json",
            Cmd::PlanJson => "plan --json",
            Cmd::EmitQemu => "emit qemu --format json --accel tcg",
            Cmd::EmitXl => "emit xl",
            Cmd::EmitFirecracker => "emit firecracker",
            Cmd::EmitCloudHypervisor => "emit cloud-hypervisor",
            Cmd::CheckJson => "check --json",
            Cmd::RunKvm => "run --backend kvm --mem 128 --timeout 2",
        }
    }

    /// Whether it takes `--extract-to`.
    fn extracts(self) -> bool {
        matches!(
            self,
            Cmd::PlanJson
                | Cmd::EmitQemu
                | Cmd::EmitXl
                | Cmd::EmitFirecracker
                | Cmd::EmitCloudHypervisor
                | Cmd::RunKvm
        )
    }

    /// Whether a success prints a JSON document on stdout.
    fn json(self) -> bool {
        matches!(
            self,
            Cmd::InspectJson
                | Cmd::PlanJson
                | Cmd::EmitQemu
                | Cmd::EmitFirecracker
                | Cmd::CheckJson
        )
    }

    /// Whether `status` is a documented non-refusal outcome.
    fn accepts(self, status: i32) -> bool {
        match self {
            Cmd::RunKvm => matches!(status, 0 | 3 | 4 | 124) || (status & 1 == 1 && status != 1),
            _ => status == 0,
        }
    }
}

/// One image of the corpus and the commands it gets.
struct Image {
    name: String,
    path: PathBuf,
    cmds: Vec<Cmd>,
}

/// Builds the corpus's files in one scratch directory.
struct Corpus {
    dir: PathBuf,
    images: Vec<Image>,
    kvm: bool,
}

impl Corpus {
    /// Add an image that gets every command but `run`, and `run` too if `run` and KVM works.
    fn add(&mut self, name: impl Into<String>, bytes: &[u8], run: bool) {
        let mut cmds = Cmd::STATIC.to_vec();
        if run && self.kvm {
            cmds.push(Cmd::RunKvm);
        }
        self.add_with(name, bytes, cmds);
    }

    fn add_with(&mut self, name: impl Into<String>, bytes: &[u8], cmds: Vec<Cmd>) {
        let name = name.into();
        let path = self.dir.join(format!("{:04}-{}", self.images.len(), name));
        fs::write(&path, bytes).unwrap();
        self.images.push(Image { name, path, cmds });
    }
}

/// splitmix64: deterministic pseudo-random bytes from a seed.
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn patched(img: &[u8], off: usize, bytes: &[u8]) -> Vec<u8> {
    let mut v = img.to_vec();
    v[off..off + bytes.len()].copy_from_slice(bytes);
    v
}

/// The synthetic bzImage: the fixture layout around a gzip payload holding a PVH ELF.
fn synthetic_bzimage() -> Vec<u8> {
    bzimage(&BzSpec::gzip_of(&pvh_elf(&PvhSpec::default())))
}

/// Named setup-header fields: (name, offset, size).
const SETUP_FIELDS: &[(&str, usize, usize)] = &[
    ("setup_sects", 0x1f1, 1),
    ("syssize", 0x1f4, 4),
    ("version", 0x206, 2),
    ("kernel_version", 0x20e, 2),
    ("loadflags", 0x211, 1),
    ("code32_start", 0x214, 4),
    ("initrd_addr_max", 0x22c, 4),
    ("kernel_alignment", 0x230, 4),
    ("relocatable_kernel", 0x234, 1),
    ("min_alignment", 0x235, 1),
    ("xloadflags", 0x236, 2),
    ("cmdline_size", 0x238, 4),
    ("payload_offset", 0x248, 4),
    ("payload_length", 0x24c, 4),
    ("pref_address", 0x258, 8),
    ("init_size", 0x260, 4),
    ("handover_offset", 0x264, 4),
];

fn bzimage_images(c: &mut Corpus) {
    let bz = synthetic_bzimage();
    // The unmutated image: every command must succeed or refuse cleanly.
    c.add("bz-pristine", &bz, true);

    // Every truncation of the first 0x280 bytes: all lengths for inspect, every 16th for all.
    for len in 0..0x280usize {
        if len % 16 == 0 {
            c.add(format!("bz-trunc-{len:#x}"), &bz[..len], false);
        } else {
            c.add_with(
                format!("bz-trunc-{len:#x}"),
                &bz[..len],
                vec![Cmd::Inspect, Cmd::InspectJson],
            );
        }
    }

    // Each setup-header byte: top bit flipped, 0xff, 0x00. `run` for the top-bit flips of a
    // sample of bytes (each boot may take up to the 2 s timeout).
    for off in 0x1f1..0x26cusize {
        let orig = bz[off];
        let mut seen = Vec::new();
        for (what, v) in [("flip", orig ^ 0x80), ("ff", 0xff), ("00", 0x00)] {
            if v == orig || seen.contains(&v) {
                continue;
            }
            seen.push(v);
            let run = what == "flip" && off % 8 == 1;
            c.add(format!("bz-{what}-{off:#x}"), &patched(&bz, off, &[v]), run);
        }
    }

    // Absurd values in the size and offset fields.
    let field = |name: &str| {
        SETUP_FIELDS
            .iter()
            .find(|f| f.0 == name)
            .map(|f| (f.1, f.2))
            .unwrap()
    };
    let len = bz.len() as u64;
    let absurd: &[(&str, u64)] = &[
        ("setup_sects", 0xff),
        ("syssize", 0),
        ("syssize", 0xffff_ffff),
        ("syssize", len),
        ("payload_offset", len),
        ("payload_offset", 0xffff_fff0),
        ("payload_offset", 0xffff_ffff),
        ("payload_length", 0),
        ("payload_length", 3),
        ("payload_length", 4),
        ("payload_length", len),
        ("payload_length", 0xffff_ffff),
        ("init_size", 0),
        ("init_size", 0xffff_ffff),
        ("pref_address", 0),
        ("pref_address", 0xffff_ffff_ffff_f000),
        ("pref_address", u64::MAX),
        ("pref_address", 0x8000_0000_0000_0000),
        ("cmdline_size", 0),
        ("cmdline_size", 0xffff_ffff),
        ("kernel_alignment", 0),
        ("kernel_alignment", 3),
        ("kernel_alignment", 0x8000_0000),
        ("initrd_addr_max", 0),
        ("kernel_version", 0xffff),
        ("handover_offset", 0xffff_ffff),
        ("code32_start", 0xffff_ffff),
        ("version", 0x0200),
        ("version", 0xffff),
    ];
    for &(name, v) in absurd {
        let (off, size) = field(name);
        c.add(
            format!("bz-{name}-{v:#x}"),
            &patched(&bz, off, &uint(v, size, false)),
            true,
        );
    }
    // payload_offset + payload_length overflowing 32 bits together.
    let mut both = patched(&bz, 0x248, &0x8000_0000u32.to_le_bytes());
    both[0x24c..0x250].copy_from_slice(&0x8000_0010u32.to_le_bytes());
    c.add("bz-payload-offset-plus-length-wraps", &both, false);
    // The size trailer (last 4 bytes) absurd.
    let n = bz.len();
    c.add(
        "bz-trailer-ffffffff",
        &patched(&bz, n - 4, &[0xff; 4]),
        false,
    );
    c.add("bz-trailer-0", &patched(&bz, n - 4, &[0; 4]), false);
    // The payload cut short, and the gzip stream corrupted.
    c.add("bz-payload-halved", &bz[..n - 40], false);
    let pm = 4 * 512 + 0x2cc;
    c.add(
        "bz-payload-garbage",
        &patched(&bz, pm + 10, &random_bytes(7, 32)),
        false,
    );
    c.add(
        "bz-payload-unknown-magic",
        &patched(&bz, pm, b"\x00\x11\x22\x33"),
        false,
    );
}

/// Offsets of the program headers of a little-endian ELF64: (p_type, header offset).
fn phdrs64(img: &[u8]) -> Vec<(u32, usize)> {
    let phoff = u64::from_le_bytes(img[0x20..0x28].try_into().unwrap()) as usize;
    let phnum = u16::from_le_bytes(img[0x38..0x3a].try_into().unwrap()) as usize;
    (0..phnum)
        .map(|i| {
            let at = phoff + i * 56;
            (u32::from_le_bytes(img[at..at + 4].try_into().unwrap()), at)
        })
        .collect()
}

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;

fn elf_images(c: &mut Corpus) {
    let elf = pvh_elf(&PvhSpec::default());
    let len = elf.len() as u64;
    c.add("elf-pristine", &elf, true);
    let ph = phdrs64(&elf);
    let load = ph.iter().find(|p| p.0 == PT_LOAD).unwrap().1;
    let note = ph.iter().find(|p| p.0 == PT_NOTE).unwrap().1;
    let note_off = u64::from_le_bytes(elf[note + 8..note + 16].try_into().unwrap()) as usize;

    // (name, offset, bytes)
    let mut patches: Vec<(String, usize, Vec<u8>)> = vec![
        ("e_phoff-huge".into(), 0x20, uint(u64::MAX - 8, 8, false)),
        ("e_phoff-eof".into(), 0x20, uint(len, 8, false)),
        ("e_phoff-eof-minus-8".into(), 0x20, uint(len - 8, 8, false)),
        ("e_phnum-ffff".into(), 0x38, uint(0xffff, 2, false)),
        ("e_phnum-0".into(), 0x38, uint(0, 2, false)),
        ("e_phentsize-0".into(), 0x36, uint(0, 2, false)),
        ("e_phentsize-ffff".into(), 0x36, uint(0xffff, 2, false)),
        ("e_shoff-huge".into(), 0x28, uint(u64::MAX, 8, false)),
        ("e_shnum-ffff".into(), 0x3c, uint(0xffff, 2, false)),
        ("e_shstrndx-ffff".into(), 0x3e, uint(0xfffe, 2, false)),
        ("e_entry-max".into(), 0x18, uint(u64::MAX, 8, false)),
        ("ei_class-3".into(), 4, vec![3]),
        ("ei_data-3".into(), 5, vec![3]),
        ("e_machine-0".into(), 0x12, uint(0, 2, false)),
    ];
    for (seg, at) in [("load", load), ("note", note)] {
        patches.extend([
            (
                format!("{seg}-p_offset-eof"),
                at + 8,
                uint(len + 0x1000, 8, false),
            ),
            (
                format!("{seg}-p_offset-max"),
                at + 8,
                uint(u64::MAX - 4, 8, false),
            ),
            (
                format!("{seg}-p_filesz-eof"),
                at + 0x20,
                uint(len * 4, 8, false),
            ),
            (
                format!("{seg}-p_filesz-max"),
                at + 0x20,
                uint(u64::MAX, 8, false),
            ),
        ]);
    }
    patches.extend([
        (
            "load-p_memsz-2^63".into(),
            load + 0x28,
            uint(1 << 63, 8, false),
        ),
        (
            "load-p_memsz-max".into(),
            load + 0x28,
            uint(u64::MAX, 8, false),
        ),
        ("load-p_memsz-0".into(), load + 0x28, uint(0, 8, false)),
        (
            "load-p_paddr-near-2^64".into(),
            load + 0x18,
            uint(u64::MAX - 0xfff, 8, false),
        ),
        (
            "load-p_paddr-4g-minus".into(),
            load + 0x18,
            uint(0xffff_f000, 8, false),
        ),
        ("load-p_paddr-0".into(), load + 0x18, uint(0, 8, false)),
        ("load-p_align-3".into(), load + 0x30, uint(3, 8, false)),
        (
            "note-namesz-huge".into(),
            note_off,
            uint(0xffff_fff0, 4, false),
        ),
        ("note-namesz-max".into(), note_off, uint(u64::MAX, 4, false)),
        (
            "note-descsz-huge".into(),
            note_off + 4,
            uint(0xffff_fff0, 4, false),
        ),
        (
            "note-descsz-max".into(),
            note_off + 4,
            uint(u64::MAX, 4, false),
        ),
        ("note-descsz-eof".into(), note_off + 4, uint(len, 4, false)),
    ]);
    for (name, off, bytes) in patches {
        c.add(format!("elf-{name}"), &patched(&elf, off, &bytes), true);
    }

    // ELF32 with absurd header fields.
    let elf32 = pvh_elf(&PvhSpec {
        is_64: false,
        entry: 0x100_0000,
        entry_size: 4,
        big_endian: false,
    });
    c.add("elf32-pristine", &elf32, true);
    for (name, off, bytes) in [
        ("e_phoff-max", 0x1c, uint(0xffff_fff0, 4, false)),
        ("e_phnum-ffff", 0x2c, uint(0xffff, 2, false)),
        ("e_shoff-max", 0x20, uint(0xffff_ffff, 4, false)),
    ] {
        c.add(format!("elf32-{name}"), &patched(&elf32, off, &bytes), true);
    }

    // Truncations of the ELF header and program headers (inspect and plan).
    for l in (0..elf.len().min(0x200)).step_by(8) {
        c.add_with(
            format!("elf-trunc-{l:#x}"),
            &elf[..l],
            vec![Cmd::Inspect, Cmd::PlanJson],
        );
    }

    // Overlapping and absurd PT_LOADs built directly.
    let seg = |paddr: u64, memsz: u64| LoadSpec {
        paddr,
        vaddr: paddr,
        data: vec![0xf4; 64],
        memsz,
        align: 0x1000,
    };
    let pvh_note = vec![vec![NoteSpec::xen(18, uint(0x20_0000, 4, false))]];
    for (name, loads) in [
        (
            "overlap",
            vec![seg(0x20_0000, 0x2000), seg(0x20_1000, 0x2000)],
        ),
        (
            "identical",
            vec![seg(0x20_0000, 0x2000), seg(0x20_0000, 0x2000)],
        ),
        (
            "wraps-2^64",
            vec![seg(0xffff_ffff_ffff_f000, 0x2000), seg(0x20_0000, 0x1000)],
        ),
        ("low-memory", vec![seg(0, 0x10_0000)]),
        ("memsz-2^63", vec![seg(0x20_0000, 1 << 63)]),
        ("no-loads", vec![]),
    ] {
        c.add(
            format!("elf-loads-{name}"),
            &build_elf(&ElfSpec {
                loads,
                note_segments: pvh_note.clone(),
                ..ElfSpec::default()
            }),
            true,
        );
    }
}

fn multiboot_images(c: &mut Corpus) {
    let len = 4096usize;
    let base = multiboot_flat(0, len, 0x10_2000);
    c.add("mb-pristine", &base, true);
    let load = 0x10_0000u32;
    // The a.out-kludge fields at 12..32: header_addr, load_addr, load_end_addr, bss_end_addr,
    // entry_addr.
    let cases: &[(&str, [u32; 5])] = &[
        (
            "load-end-before-load",
            [load, load, load - 0x1000, 0x10_2000, load + 16],
        ),
        (
            "header-before-load",
            [load - 4, load, load + 4096, 0x10_2000, load + 16],
        ),
        ("header-past-eof", [load + 0x10_0000, load, 0, 0, load + 16]),
        (
            "load-end-past-eof",
            [load, load, load + 0x100_0000, 0x110_0000, load + 16],
        ),
        (
            "bss-before-load-end",
            [load, load, load + 4096, load + 8, load + 16],
        ),
        ("entry-outside", [load, load, load + 4096, 0, 0xffff_fff0]),
        ("all-max", [u32::MAX; 5]),
        ("all-zero", [0; 5]),
        (
            "load-at-4g-minus",
            [0xffff_f000, 0xffff_f000, 0, 0xffff_ffff, 0xffff_f010],
        ),
        ("bss-max", [load, load, load + 4096, u32::MAX, load + 16]),
    ];
    for (name, addrs) in cases {
        let mut img = base.clone();
        for (i, v) in addrs.iter().enumerate() {
            img[12 + 4 * i..16 + 4 * i].copy_from_slice(&v.to_le_bytes());
        }
        c.add(format!("mb-{name}"), &img, true);
    }
    // The header near the end of the 8 KiB scan window, cut off.
    let mut tail = vec![0x90u8; 8192];
    let h = anyboot_fixtures::multiboot_header(
        0x3 | anyboot_fixtures::MB_AOUT_KLUDGE,
        [load + 8180, load, load + 8192, 0, load + 16],
    );
    tail[8180..].copy_from_slice(&h[..12]);
    c.add("mb-header-cut-by-eof", &tail, true);
    // Truncations of the flat image inside its header.
    for l in [4, 8, 12, 16, 20, 24, 28, 31] {
        c.add(format!("mb-trunc-{l}"), &base[..l], false);
    }
}

fn random_images(c: &mut Corpus) {
    c.add("empty", b"", false);
    c.add("one-byte", b"\x7f", false);
    for (i, size) in [2usize, 16, 63, 64, 512, 0x26c, 4096, 8192, 65536]
        .into_iter()
        .enumerate()
    {
        c.add(
            format!("random-{size}"),
            &random_bytes(0x5eed + i as u64, size),
            false,
        );
    }
    // Random bytes after each magic.
    let mut elf_magic = random_bytes(1, 4096);
    elf_magic[..4].copy_from_slice(b"\x7fELF");
    c.add("random-after-elf-magic", &elf_magic, false);
    elf_magic[4] = 2;
    elf_magic[5] = 1;
    c.add("random-after-elf64le-ident", &elf_magic, false);
    let mut hdrs = random_bytes(2, 4096);
    hdrs[0x202..0x206].copy_from_slice(b"HdrS");
    c.add("random-around-hdrs", &hdrs, false);
    hdrs[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    c.add("random-around-hdrs-v2.15", &hdrs, false);
    let mut mz = random_bytes(3, 4096);
    mz[..2].copy_from_slice(b"MZ");
    c.add("random-after-mz", &mz, false);
    let mut mb = random_bytes(4, 4096);
    mb[..12].copy_from_slice(&anyboot_fixtures::multiboot_header(0x3, [0; 5]));
    c.add("random-after-multiboot-header", &mb, true);
}

fn debian_images(c: &mut Corpus) {
    let Some(kernel) = kernel_or_skip("cloud") else {
        return;
    };
    let full = fs::read(&kernel.vmlinuz).unwrap();
    let head = &full[..full.len().min(0x10000)];
    for l in [
        0x1f0, 0x1f1, 0x200, 0x202, 0x206, 0x250, 0x26b, 0x26c, 0x400, 0x1000, 0x4000, 0x8000,
        0x10000,
    ] {
        if l <= head.len() {
            c.add(format!("debian-cloud-head-{l:#x}"), &head[..l], false);
        }
    }
    let plen = u32::from_le_bytes(full[0x24c..0x250].try_into().unwrap());
    c.add(
        "debian-cloud-payload-length-doubled",
        &patched(&full, 0x24c, &plen.wrapping_mul(2).to_le_bytes()),
        false,
    );
}

/// What one run of anyboot did.
struct Outcome {
    /// Exit status, or `None` if killed by a signal.
    status: Option<i32>,
    signal: Option<i32>,
    hung: bool,
    stdout: Vec<u8>,
    stderr: String,
}

fn run_one(image: &Image, cmd: Cmd, work: &Path, n: usize) -> Outcome {
    let args: &[&str] = match cmd {
        Cmd::Inspect => &["inspect"],
        Cmd::InspectJson => &["inspect", "--json"],
        Cmd::PlanJson => &["plan", "--json"],
        Cmd::EmitQemu => &["emit", "qemu", "--format", "json", "--accel", "tcg"],
        Cmd::EmitXl => &["emit", "xl"],
        Cmd::EmitFirecracker => &["emit", "firecracker"],
        Cmd::EmitCloudHypervisor => &["emit", "cloud-hypervisor"],
        Cmd::CheckJson => &["check", "--json"],
        Cmd::RunKvm => &["run", "--backend", "kvm", "--mem", "128", "--timeout", "2"],
    };
    let out_path = work.join(format!("{n}.out"));
    let err_path = work.join(format!("{n}.err"));
    let extract = work.join("extract");
    let mut command = Command::new(assert_cmd::cargo::cargo_bin!("anyboot"));
    command.args(args);
    if cmd.extracts() {
        command.arg("--extract-to").arg(&extract);
    }
    command
        .arg(&image.path)
        // Nothing may land in the user's cache, whatever the command.
        .env("XDG_CACHE_HOME", work.join("cache"))
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap());
    let mut child = command.spawn().unwrap();
    let start = Instant::now();
    let (status, hung) = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break (st, false);
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            break (child.wait().unwrap(), true);
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let stdout = fs::read(&out_path).unwrap_or_default();
    let stderr = String::from_utf8_lossy(&fs::read(&err_path).unwrap_or_default()).into_owned();
    let _ = fs::remove_file(&out_path);
    let _ = fs::remove_file(&err_path);
    Outcome {
        status: status.code(),
        signal: status.signal(),
        hung,
        stdout,
        stderr,
    }
}

/// The rule `out` breaks, if any.
fn violation(image: &Image, cmd: Cmd, out: &Outcome) -> Option<String> {
    if out.hung {
        return Some(format!("hung: killed after {DEADLINE:?}"));
    }
    let Some(status) = out.status else {
        return Some(format!("killed by signal {:?}", out.signal));
    };
    match status {
        101 => Some("panicked (status 101)".into()),
        1 => Some("status 1".into()),
        2 => {
            let lines: Vec<&str> = out.stderr.lines().collect();
            let path = image.path.display().to_string();
            if lines.len() != 1 {
                Some(format!("refused with {} stderr lines", lines.len()))
            } else if !lines[0].starts_with(&format!("anyboot: {path}: ")) {
                Some("the stderr line does not start with `anyboot: <path>: `".into())
            } else if !out.stdout.is_empty() && cmd != Cmd::RunKvm {
                Some(format!(
                    "refused but printed {} bytes on stdout",
                    out.stdout.len()
                ))
            } else {
                None
            }
        }
        s if cmd.accepts(s) => {
            if s == 0
                && cmd.json()
                && serde_json::from_slice::<serde_json::Value>(&out.stdout).is_err()
            {
                Some("succeeded but stdout is not JSON".into())
            } else {
                None
            }
        }
        s => Some(format!("undocumented status {s}")),
    }
}

fn known(image: &Image, cmd: Cmd) -> Option<&'static str> {
    KNOWN_BUGS
        .iter()
        .find(|(prefix, c, _)| image.name.starts_with(prefix) && *c == cmd.name())
        .map(|k| k.2)
}

#[test]
fn every_command_survives_every_hostile_image() {
    let started = Instant::now();
    let dir = scratch("corpus");
    fs::create_dir_all(&dir).unwrap();
    let mut corpus = Corpus {
        dir: dir.clone(),
        images: Vec::new(),
        kvm: kvm_or_skip(),
    };
    random_images(&mut corpus);
    bzimage_images(&mut corpus);
    elf_images(&mut corpus);
    multiboot_images(&mut corpus);
    debian_images(&mut corpus);

    let jobs: Vec<(usize, Cmd)> = corpus
        .images
        .iter()
        .enumerate()
        .flat_map(|(i, img)| img.cmds.iter().map(move |&c| (i, c)))
        .collect();
    let next = AtomicUsize::new(0);
    let found: Mutex<Vec<(usize, Cmd, String, String)>> = Mutex::new(Vec::new());
    let tally: Mutex<Vec<(&str, Option<i32>)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for w in 0..WORKERS {
            let (jobs, next, found, tally, images) = (&jobs, &next, &found, &tally, &corpus.images);
            let work = dir.join(format!("work-{w}"));
            fs::create_dir_all(&work).unwrap();
            s.spawn(move || {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(i, cmd)) = jobs.get(n) else { break };
                    let out = run_one(&images[i], cmd, &work, n);
                    tally.lock().unwrap().push((cmd.name(), out.status));
                    if let Some(v) = violation(&images[i], cmd, &out) {
                        let detail = format!(
                            "status {:?} signal {:?}; stderr: {}",
                            out.status,
                            out.signal,
                            out.stderr.trim_end().replace('\n', "\n      | ")
                        );
                        found.lock().unwrap().push((i, cmd, v, detail));
                    }
                }
            });
        }
    });

    let mut found = found.into_inner().unwrap();
    found.sort_by_key(|f| (f.0, f.1.name()));
    let mut failures = Vec::new();
    for (i, cmd, what, detail) in &found {
        let img = &corpus.images[*i];
        let line = format!(
            "{} [{}] `anyboot {}`: {what}\n      | {detail}",
            img.name,
            img.path.display(),
            cmd.name()
        );
        match known(img, *cmd) {
            Some(bug) => eprintln!("KNOWN ({bug}): {line}"),
            None => failures.push(line),
        }
    }
    let mut tally = tally.into_inner().unwrap();
    tally.sort_unstable();
    let mut counts: Vec<((&str, Option<i32>), usize)> = Vec::new();
    for t in tally {
        match counts.last_mut() {
            Some((k, n)) if *k == t => *n += 1,
            _ => counts.push((t, 1)),
        }
    }
    for ((cmd, status), n) in counts {
        eprintln!("  `anyboot {cmd}`: status {status:?} x{n}");
    }
    eprintln!(
        "hostile corpus: {} images, {} commands, {} violations ({} known) in {:.1?}",
        corpus.images.len(),
        jobs.len(),
        found.len(),
        found.len() - failures.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} violations:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let _ = fs::remove_dir_all(dir.parent().unwrap());
}
