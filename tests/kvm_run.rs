//! `anyboot run` under KVM with the probe guests of `tests/guests/`: every protocol's guest
//! checks what it was handed and the test holds its report against what the test itself knows
//! (the command line it passed, the FNV-1a sum of the initrd bytes it wrote, the CPU count),
//! and against QEMU booting the same guest (its PVH and multiboot loaders are the reference).
//! Also: the options of `run` and their one-line refusals, `--time` and `--json`.
//!
//! Needs /dev/kvm (skipped loudly when it cannot be opened), `cc`/`ld` for the guests, and
//! `qemu-system-x86_64` for the comparisons.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use anyboot_fixtures::guests::{
    EXIT_PASS, GUESTS, ProbeReport, fnv1a32, guest_or_skip, protocol, qemu_argv, test_initrd,
};
use anyboot_fixtures::kernels::{kvm_or_skip, tool_or_skip};
use anyboot_fixtures::qemu::run_qemu;
use anyboot_fixtures::scratch;

/// A command line with blanks, quotes and shell metacharacters, handed over verbatim.
const CMDLINE: &str = r#"console=ttyS0 anyboot.probe="a b" x$HOME;'q'`id`%s*&|<>"#;
/// Not a multiple of 4, so the guest's checksum loop runs its byte tail. Small: this host's
/// KVM emulates guest instructions at about 1 µs each.
const INITRD_LEN: usize = 20_003;

fn anyboot_run(kernel: &Path, args: &[&str]) -> Output {
    Command::new(assert_cmd::cargo::cargo_bin!("anyboot"))
        .arg("run")
        .arg(kernel)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Write the test initrd; returns its path and its FNV-1a sum computed here.
fn initrd(name: &str) -> (PathBuf, u32) {
    let bytes = test_initrd(INITRD_LEN, 11);
    let path = scratch(name);
    std::fs::write(&path, &bytes).unwrap();
    (path, fnv1a32(&bytes))
}

/// Boot `guest` under anyboot run; returns the status, the report and stderr.
fn boot(guest: &Path, extra: &[&str]) -> (i32, ProbeReport, String) {
    let out = anyboot_run(
        guest,
        &[
            &["--mem", "128", "--cmdline", CMDLINE, "--timeout", "60"],
            extra,
        ]
        .concat(),
    );
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    let report = ProbeReport::parse(&stdout)
        .unwrap_or_else(|| panic!("no report line; stdout: {stdout}\nstderr: {stderr}"));
    (out.status.code().unwrap_or(-1), report, stderr)
}

#[test]
fn every_protocol_guest_passes_its_checks() {
    if !kvm_or_skip() {
        return;
    }
    let (rd, sum) = initrd("kvm-initrd");
    for name in GUESTS {
        let Some(guest) = guest_or_skip(name) else {
            return;
        };
        let (status, r, err) = boot(&guest, &["--initrd", rd.to_str().unwrap()]);
        assert_eq!(status, EXIT_PASS, "{name}: {r:?} {err}");
        assert!(r.passed(), "{name}: failed {:?}", r.fails());
        assert_eq!(r.get("proto"), protocol(name), "{name}");
        let want = if name == "multiboot" {
            // GRUB's and QEMU's convention: the kernel's path, then the command line.
            format!("{} {CMDLINE}", guest.display())
        } else {
            CMDLINE.to_owned()
        };
        assert_eq!(r.cmdline, want, "{name}");
        assert_eq!(r.num("initrd_len"), Some(INITRD_LEN as u64), "{name}");
        assert_eq!(
            r.get("initrd_sum"),
            Some(format!("{sum:#010x}").as_str()),
            "{name}: initrd bytes differ from the file's"
        );
        for check in ["bss", "magic", "memmap", "cmdline", "initrd", "layout"] {
            assert!(r.checks().contains(&check), "{name} ran no {check} check");
        }
    }
}

#[test]
fn reports_agree_with_qemu() {
    if !kvm_or_skip() {
        return;
    }
    let Some(qemu) = tool_or_skip("qemu-system-x86_64") else {
        return;
    };
    let bytes = test_initrd(INITRD_LEN, 5);
    let rd = scratch("kvm-vs-qemu-initrd");
    std::fs::write(&rd, &bytes).unwrap();
    // QEMU loads PVH and multiboot kernels with -kernel (the Linux-protocol guests cannot be:
    // QEMU enters a bzImage through its real-mode setup code, not the 64-bit entry).
    for name in ["pvh32", "pvh64", "multiboot"] {
        let Some(guest) = guest_or_skip(name) else {
            return;
        };
        let argv = qemu_argv(&qemu, &guest, "pc", 1, 128, CMDLINE, Some(&rd));
        let q = run_qemu(&argv, Duration::from_secs(60));
        let qr = ProbeReport::parse(&q.output)
            .unwrap_or_else(|| panic!("{name}: no report from QEMU: {}", q.output));
        let (status, kr, err) = boot(&guest, &["--initrd", rd.to_str().unwrap()]);
        assert_eq!(status, EXIT_PASS, "{name}: {err}");
        assert_eq!(q.status.and_then(|s| s.code()), Some(EXIT_PASS), "{name}");
        assert_eq!(kr.comparable(), qr.comparable(), "{name}: anyboot vs QEMU");
        assert_eq!(kr.cmdline, qr.cmdline, "{name}: command line");
    }
}

#[test]
fn smp_guest_starts_every_cpu_the_mp_table_lists() {
    if !kvm_or_skip() {
        return;
    }
    let Some(guest) = guest_or_skip("pvh32") else {
        return;
    };
    for cpus in ["1", "2", "4"] {
        let out = anyboot_run(
            &guest,
            &[
                "--mem",
                "64",
                "--cpus",
                cpus,
                "--cmdline",
                "smp",
                "--timeout",
                "60",
            ],
        );
        let stdout = text(&out.stdout);
        let r = ProbeReport::parse(&stdout).unwrap_or_else(|| panic!("no report: {stdout}"));
        assert_eq!(out.status.code(), Some(EXIT_PASS), "{cpus} CPUs: {r:?}");
        assert!(r.checks().contains(&"smp"), "{r:?}");
        assert_eq!(r.get("mp_cpus"), Some(cpus), "MP table CPU count");
        assert_eq!(r.get("cpus"), Some(cpus), "CPUs that answered INIT+SIPI");
    }
}

#[test]
fn time_and_json_report_on_stderr() {
    if !kvm_or_skip() {
        return;
    }
    let Some(guest) = guest_or_skip("pvh32") else {
        return;
    };
    let out = anyboot_run(&guest, &["--mem", "64", "--time", "--json"]);
    assert_eq!(out.status.code(), Some(EXIT_PASS));
    let stdout = text(&out.stdout);
    assert!(
        ProbeReport::parse(&stdout).is_some(),
        "stdout is the console: {stdout}"
    );
    let stderr = text(&out.stderr);
    let time = stderr
        .lines()
        .find(|l| l.starts_with("anyboot: time (us from launch):"))
        .unwrap_or_else(|| panic!("no --time line: {stderr}"));
    let nums: Vec<u64> = time
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(nums.len(), 3, "{time}");
    assert!(
        nums[0] < nums[1] && nums[1] <= nums[2],
        "first instruction, first serial byte, exit in order: {time}"
    );
    let json: serde_json::Value = serde_json::from_str(
        stderr
            .lines()
            .find(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("no JSON: {stderr}")),
    )
    .unwrap();
    assert_eq!(json["backend"], "kvm");
    assert_eq!(json["end"], "debug-exit");
    assert_eq!(json["exit_status"], EXIT_PASS);
    assert_eq!(json["first_serial_us"], nums[1]);
    // The report line plus its newline went through the UART.
    let line = stdout
        .lines()
        .find(|l| l.contains("ANYBOOT-PROBE"))
        .unwrap();
    assert!(json["serial_bytes"].as_u64().unwrap() > line.len() as u64);
}

#[test]
fn qemu_backend_runs_the_same_guest() {
    let Some(_) = tool_or_skip("qemu-system-x86_64") else {
        return;
    };
    let Some(guest) = guest_or_skip("pvh32") else {
        return;
    };
    let (status, r, err) = boot(&guest, &["--backend", "qemu"]);
    assert_eq!(status, EXIT_PASS, "{err}");
    assert!(r.passed(), "{r:?}");
    assert_eq!(r.cmdline, CMDLINE);
}

#[test]
fn refusals_are_one_line_with_status_2() {
    let Some(guest) = guest_or_skip("pvh32") else {
        return;
    };
    let cases: &[(&[&str], &str)] = &[
        (&["--timeout", "0"], "--timeout 0"),
        (&["--cpu-disable", "warp-drive"], "unknown feature"),
        (
            &["--backend", "kvm", "--disk", "/dev/null"],
            "no block devices",
        ),
        (&["--protocol", "linux"], "cannot boot by linux"),
        (&["--init", "/nonexistent/init"], "--init"),
    ];
    for (args, want) in cases {
        let out = anyboot_run(&guest, args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("anyboot: ") && err.contains(want),
            "{args:?}: {err}"
        );
    }
    // The 32-bit Linux entry is for emitters: refused before any guest runs.
    if let Some(bz) = guest_or_skip("bzimage64") {
        let out = anyboot_run(&bz, &["--protocol", "linux32", "--backend", "kvm"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("linux32"), "{err}");
    }
}

/// `anyboot run` reports the guest's end without waiting for KVM to tear the VM down: a child
/// holds the VM until the process has exited, then ends. It must not outlive that by much, and
/// must not hold the run's stdout (the test's read of it ends).
#[test]
fn teardown_child_ends_after_the_process() {
    if !kvm_or_skip() {
        return;
    }
    let Some(pvh) = guest_or_skip("pvh32") else {
        return;
    };
    // A path of its own, to find the child by its command line.
    let guest = scratch("teardown-pvh32");
    std::fs::copy(&pvh, &guest).unwrap();
    for _ in 0..3 {
        let out = anyboot_run(&guest, &["--mem", "64", "--backend", "kvm"]);
        assert_eq!(out.status.code(), Some(EXIT_PASS));
    }
    let needle = guest.to_string_lossy().into_owned();
    let lingering = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
            .filter(|c| String::from_utf8_lossy(c).contains(&needle))
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while lingering() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "a teardown child still runs 10 s after its VM's process ended"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
