//! Shared checks for anyboot's fuzz targets.

/// Every error anyboot reports must be one line: the CLI prints it as `anyboot: FILE: MESSAGE`
/// and scripts grep it. Panics (so libFuzzer records a crash) if `msg` spans lines.
pub fn one_line(what: &str, msg: &str) {
    assert!(
        !msg.contains('\n') && !msg.contains('\r') && !msg.is_empty(),
        "{what}: error message is not one non-empty line: {msg:?}"
    );
}

/// The error chain (`Display` of each source) as one line, checked.
pub fn check_error(what: &str, e: &dyn std::error::Error) {
    one_line(what, &e.to_string());
    let mut src = e.source();
    while let Some(s) = src {
        one_line(what, &s.to_string());
        src = s.source();
    }
}

use loader::layout;

/// A bzImage whose gzip payload is the fixture PVH ELF (so it boots by Linux and by PVH).
pub fn bzimage_with_pvh_elf() -> Vec<u8> {
    use anyboot_fixtures as fx;
    fx::bzimage(&fx::BzSpec::gzip_of(&fx::pvh_elf(&fx::PvhSpec::default())))
}
use loader::plan::BootPlan;

fn inside_ram(plan: &BootPlan, addr: u64, size: u64) -> bool {
    let end = match addr.checked_add(size) {
        Some(e) => e,
        None => return false,
    };
    layout::ram_ranges(plan.memory.size_mib << 20)
        .iter()
        .any(|&(s, n)| addr >= s && end <= s + n)
}

fn disjoint(a: (u64, u64), b: (u64, u64)) -> bool {
    a.1 <= b.0 || b.1 <= a.0 || a.0 == a.1 || b.0 == b.1
}

/// What a plan promises before any guest runs: every kernel segment and module lies in guest
/// RAM above the low boot area, inside the file, and overlaps nothing else; the boot
/// structures `loader::boot::prepare` writes (when the protocol is one `run` does) lie in RAM
/// and overlap neither each other nor the kernel or modules.
pub fn check_plan(plan: &BootPlan, file_len: u64) {
    let mut taken: Vec<(u64, u64, String)> = Vec::new();
    for s in &plan.segments {
        assert!(
            s.file_size <= s.mem_size,
            "segment file size over memory size: {s:?}"
        );
        if plan.extraction.is_none() {
            let end = s
                .file_offset
                .checked_add(s.file_size)
                .expect("segment file end overflows");
            assert!(
                end <= file_len,
                "segment outside the file: {s:?} (file {file_len})"
            );
        }
        assert!(
            s.guest_addr >= layout::HIGH_RAM_START,
            "segment in the boot area: {s:?}"
        );
        assert!(
            inside_ram(plan, s.guest_addr, s.mem_size),
            "segment outside RAM: {s:?}"
        );
        taken.push((
            s.guest_addr,
            s.guest_addr + s.mem_size,
            format!("segment {s:?}"),
        ));
    }
    for m in &plan.modules {
        assert!(
            inside_ram(plan, m.addr, m.size),
            "module outside RAM: {m:?}"
        );
        taken.push((m.addr, m.addr + m.size, format!("module {m:?}")));
    }
    let mut setup_bytes = None;
    if plan.protocol == loader::plan::Protocol::Linux64
        && plan.format == loader::inspect::Format::Bzimage
    {
        // The same bytes the KVM backend reads: a zeroed header is enough for the structure
        // checks (the plan already holds the header's values).
        setup_bytes = Some(vec![
            0u8;
            std::mem::size_of::<loader::abi::linux::SetupHeader>()
        ]);
    }
    if plan.protocol != loader::plan::Protocol::Linux32 {
        match loader::boot::prepare(plan, setup_bytes.as_deref()) {
            Ok(setup) => {
                for w in &setup.writes {
                    let n = w.bytes.len() as u64;
                    assert!(
                        inside_ram(plan, w.addr, n),
                        "{} at {:#x}+{n:#x} outside RAM",
                        w.what,
                        w.addr
                    );
                    taken.push((w.addr, w.addr + n, w.what.to_owned()));
                }
            }
            Err(e) => check_error("boot::prepare", &e),
        }
    }
    // Modules and boot structures also stay out of the kernel's whole range (its BSS, and for a
    // bzImage the init_size area it decompresses into).
    let (klo, khi) = plan.kernel_range;
    for (lo, hi, what) in taken.iter().filter(|t| !t.2.starts_with("segment")) {
        assert!(
            disjoint((*lo, *hi), (klo, khi)),
            "{what} {lo:#x}..{hi:#x} overlaps the kernel range {klo:#x}..{khi:#x}"
        );
    }
    for (i, a) in taken.iter().enumerate() {
        for b in &taken[i + 1..] {
            assert!(
                disjoint((a.0, a.1), (b.0, b.1)),
                "{} {:#x}..{:#x} overlaps {} {:#x}..{:#x}",
                a.2,
                a.0,
                a.1,
                b.2,
                b.0,
                b.1
            );
        }
    }
    one_line("plan reason", &plan.reason);
}

/// Emitter fuzzing: arbitrary strings for every user-supplied value of a plan.
pub mod emit {
    use std::path::{Path, PathBuf};
    use std::sync::OnceLock;

    use arbitrary::Arbitrary;
    use loader::inspect::Report;
    use loader::plan::{BootPlan, Disk, PlanOptions};

    /// The strings and numbers a user passes on the command line.
    #[derive(Arbitrary, Debug)]
    pub struct Input {
        /// Which test kernel (PVH ELF, multiboot, bzImage, NetBSD-like).
        pub image: u8,
        /// Kernel path.
        pub kernel: String,
        /// Initrd path.
        pub initrd: Option<String>,
        /// Command line.
        pub cmdline: Option<String>,
        /// Disk paths and read-only flags.
        pub disks: Vec<(String, bool)>,
        /// VM name.
        pub name: Option<String>,
        /// Guest memory.
        pub mem_mib: u16,
        /// vCPUs.
        pub cpus: u8,
    }

    fn reports() -> &'static [Report] {
        static R: OnceLock<Vec<Report>> = OnceLock::new();
        R.get_or_init(|| {
            let images = [
                anyboot_fixtures::pvh_elf(&anyboot_fixtures::PvhSpec::default()),
                anyboot_fixtures::multiboot_flat(0x40, 0x2000, 0),
                crate::bzimage_with_pvh_elf(),
                anyboot_fixtures::netbsd_like(),
            ];
            images
                .iter()
                .map(|img| {
                    loader::inspect::inspect(&mut std::io::Cursor::new(img))
                        .expect("fixture images inspect")
                })
                .collect()
        })
    }

    /// The plan options, the report and (if the planner accepts them) the plan.
    pub fn plan(input: &Input) -> (PathBuf, &'static Report, PlanOptions, Option<BootPlan>) {
        let reports = reports();
        let report = &reports[usize::from(input.image) % reports.len()];
        let opts = PlanOptions {
            initrd: input.initrd.as_ref().map(|p| (PathBuf::from(p), 4096)),
            cmdline: input.cmdline.clone(),
            mem_mib: Some(u64::from(input.mem_mib)),
            cpus: Some(u32::from(input.cpus)),
            disks: input
                .disks
                .iter()
                .take(30)
                .map(|(p, ro)| Disk {
                    path: PathBuf::from(p),
                    read_only: *ro,
                })
                .collect(),
            protocol: None,
            os: None,
            name: input.name.clone(),
            extract_dir: Some(PathBuf::from("/tmp/x")),
        };
        let kernel = PathBuf::from(&input.kernel);
        let plan = match loader::plan::build(Path::new(&input.kernel), report, &opts) {
            Ok(p) => Some(p),
            Err(e) => {
                crate::check_error("plan", &e);
                None
            }
        };
        (kernel, report, opts, plan)
    }

    /// `s` as a path string (the fuzzer gives UTF-8 strings; every path round-trips).
    pub fn s(p: &Path) -> &str {
        p.to_str().expect("fuzz paths are UTF-8")
    }

    /// The values of `flag` in `(option, value)` pairs read back from an argv.
    pub fn values<'a>(pairs: &'a [(String, Option<String>)], flag: &str) -> Vec<&'a str> {
        pairs
            .iter()
            .filter(|(o, _)| o == flag)
            .map(|(_, v)| v.as_deref().expect("an option with a value"))
            .collect()
    }

    /// The argv survives being printed as a shell line and read back by shell rules.
    pub fn shell_round_trip(argv: &[String]) {
        let line = backends::qemu::shell_line(argv);
        let back = backends::readback::shell_words(&line)
            .unwrap_or_else(|e| panic!("shell line does not read back: {e}: {line:?}"));
        assert_eq!(back, argv, "shell line {line:?} reads back differently");
    }

    /// The plan's command line as an emitter may extend it: the user's words first, then only
    /// whole words appended.
    pub fn cmdline_extends(plan: &BootPlan, got: &str) {
        let want = &plan.cmdline;
        assert!(
            got == want
                || want.is_empty()
                || got
                    .strip_prefix(want.as_str())
                    .is_some_and(|r| r.starts_with(' ')),
            "command line {got:?} does not extend the plan's {want:?}"
        );
    }
}
