//! Every documented exit status of `anyboot run` (README, "anyboot run") under KVM, provoked by
//! the `behave` guest of `tests/guests/` (`behave.S`: it does what the first word of its
//! command line says), and `anyboot run`'s robustness against hostile guests: a storm of
//! accesses nobody claims, a serial flood into a slow or stalled stdout, a guest that
//! overwrites its own boot structures.
//!
//! Each test checks the exact status, that the guest ran (its `ANYBOOT-BEHAVE <word> start`
//! line opens stdout), and stderr: empty for the guest's own ends (debug exit, halt), one
//! `anyboot: ...` line naming the reason for the abnormal ones (reset, VM failure, timeout).
//! Every run has a `--timeout`, and the harness kills a run that outlives it by far.
//!
//! Needs /dev/kvm (skipped loudly when it cannot be opened) and `cc`/`ld` for the guest.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyboot_fixtures::guests::{BEHAVE_MARKER, EXIT_PASS, guest_or_skip};
use anyboot_fixtures::kernels::{kvm_or_skip, tool_or_skip};

/// Guest RAM for every run, in MiB.
const MEM_MIB: u32 = 64;

/// The 64-byte pattern of `flood=N`: byte k of the flood is `FLOOD_PATTERN[k % 64]`.
const FLOOD_PATTERN: &[u8; 64] =
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ#\n";

/// The `behave` guest, when KVM and the guest are both available.
fn behave() -> Option<PathBuf> {
    if !kvm_or_skip() {
        return None;
    }
    guest_or_skip("behave")
}

/// What the test does with the child's stdout while it runs.
#[derive(Debug, Clone, Copy)]
enum Stdout {
    /// Read it as it comes.
    Read,
    /// Read nothing for this long, then everything.
    ReadAfter(Duration),
    /// Keep the pipe open and read nothing until the process has ended (then read what the
    /// pipe buffer holds).
    Stalled,
}

/// One finished `anyboot run`.
#[derive(Debug)]
struct Run {
    /// The exit status (`None`: killed by a signal).
    status: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
    /// From spawning to the end of the process.
    elapsed: Duration,
    /// The highest VmHWM (peak resident set) seen in /proc while it ran, in KiB.
    peak_rss_kib: Option<u64>,
}

impl Run {
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Assert that the guest ran: its start line for `word` opens stdout.
    fn assert_started(&self, word: &str) {
        let line = format!("{BEHAVE_MARKER} {word} start\n");
        assert!(
            self.stdout.starts_with(line.as_bytes()),
            "{word}: the guest's start line is missing; stdout: {:?}, stderr: {}",
            String::from_utf8_lossy(&self.stdout[..self.stdout.len().min(300)]),
            self.stderr
        );
    }

    /// Assert status `want` and an empty stderr (an end the guest asked for).
    fn assert_quiet_end(&self, word: &str, want: i32) {
        assert_eq!(
            self.status,
            Some(want),
            "{word}: status; stdout: {}, stderr: {}",
            self.stdout_text(),
            self.stderr
        );
        assert_eq!(self.stderr, "", "{word}: nothing on stderr for this end");
        self.assert_started(word);
    }

    /// Assert status `want` and a stderr of one `anyboot: ` line holding every one of
    /// `reasons`.
    fn assert_abnormal_end(&self, word: &str, want: i32, reasons: &[&str]) {
        assert_eq!(
            self.status,
            Some(want),
            "{word}: status; stdout: {}, stderr: {}",
            self.stdout_text(),
            self.stderr
        );
        assert_one_line(word, &self.stderr, reasons);
        self.assert_started(word);
    }
}

/// `stderr` is exactly one line, `anyboot: ...`, containing every one of `reasons`.
fn assert_one_line(word: &str, stderr: &str, reasons: &[&str]) {
    assert!(
        stderr.ends_with('\n') && stderr.lines().count() == 1,
        "{word}: stderr must be one line: {stderr:?}"
    );
    assert!(stderr.starts_with("anyboot: "), "{word}: {stderr:?}");
    for r in reasons {
        assert!(stderr.contains(r), "{word}: {r:?} not in {stderr:?}");
    }
}

/// The peak resident set of `pid` so far (VmHWM), in KiB; `None` once it has exited.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn reader(mut r: impl Read + Send + 'static, delay: Duration) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Kill `child` and fail: it outlived its `--timeout` by far.
fn hung(mut child: Child, what: &str, guard: Duration) -> ! {
    let _ = child.kill();
    let _ = child.wait();
    panic!("{what}: anyboot run still running after {guard:?} despite its --timeout");
}

/// `anyboot run <behave> --backend kvm --mem 64 --cmdline <cmdline> --timeout <timeout_s>
/// <extra>`, with stdout handled as `stdout` says. The process is killed (and the test fails)
/// if it is still running 30 s after its own timeout.
fn run(guest: &Path, cmdline: &str, timeout_s: u32, extra: &[&str], stdout: Stdout) -> Run {
    let mem = MEM_MIB.to_string();
    let timeout = timeout_s.to_string();
    let start = Instant::now();
    let mut child = Command::new(assert_cmd::cargo::cargo_bin!("anyboot"))
        .arg("run")
        .arg(guest)
        .args(["--backend", "kvm", "--mem", &mem, "--cmdline", cmdline])
        .args(["--timeout", &timeout])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning anyboot");
    let pid = child.id();
    let err = reader(child.stderr.take().unwrap(), Duration::ZERO);
    let out = child.stdout.take().unwrap();
    let (out_thread, mut stalled) = match stdout {
        Stdout::Read => (Some(reader(out, Duration::ZERO)), None),
        Stdout::ReadAfter(d) => (Some(reader(out, d)), None),
        Stdout::Stalled => (None, Some(out)),
    };
    let guard = Duration::from_secs(u64::from(timeout_s) + 30);
    let mut peak: Option<u64> = None;
    let status = loop {
        if let Some(s) = child.try_wait().expect("waiting for anyboot") {
            break s;
        }
        if let Some(kib) = vm_hwm_kib(pid) {
            peak = Some(peak.map_or(kib, |p| p.max(kib)));
        }
        if start.elapsed() > guard {
            hung(child, cmdline, guard);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = start.elapsed();
    let stdout = match (out_thread, stalled.take()) {
        (Some(t), _) => t.join().unwrap(),
        (None, Some(mut pipe)) => {
            // The process is gone: what it wrote before the pipe filled is still there.
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        }
        (None, None) => unreachable!(),
    };
    Run {
        status: status.code(),
        stdout,
        stderr: String::from_utf8_lossy(&err.join().unwrap()).into_owned(),
        elapsed,
        peak_rss_kib: peak,
    }
}

/// A quick run: stdout read as it comes, a 60 s timeout.
fn quick(guest: &Path, cmdline: &str, extra: &[&str]) -> Run {
    run(guest, cmdline, 60, extra, Stdout::Read)
}

/// The JSON outcome (`--json`) on stderr.
fn json_outcome(run: &Run) -> serde_json::Value {
    assert_eq!(
        run.stderr.lines().count(),
        1,
        "--json: one line on stderr: {}",
        run.stderr
    );
    serde_json::from_str(run.stderr.trim()).unwrap_or_else(|e| panic!("{e}: {}", run.stderr))
}

// ---------------------------------------------------------------------------------------
// Status (v << 1) | 1: the guest wrote v to port 0xf4

/// `exit=<arg>` ends with status `want`, quietly.
fn check_debug_exit(arg: &str, want: i32) {
    let Some(g) = behave() else { return };
    let word = format!("exit={arg}");
    quick(&g, &word, &[]).assert_quiet_end(&word, want);
}

#[test]
fn debug_exit_0x10_is_33() {
    check_debug_exit("0x10", EXIT_PASS);
}

#[test]
fn debug_exit_0_is_1() {
    check_debug_exit("0", 1);
}

#[test]
fn debug_exit_0x7f_is_255() {
    check_debug_exit("0x7f", 0xff);
}

#[test]
fn debug_exit_0x80_is_1() {
    // (0x80 << 1) | 1 = 0x101: the status is its low byte.
    check_debug_exit("0x80", 1);
}

#[test]
fn debug_exit_decimal_values() {
    check_debug_exit("5", 11);
    check_debug_exit("255", 0xff);
}

#[test]
fn debug_exit_takes_all_32_bits_of_the_write() {
    let Some(g) = behave() else { return };
    // (0x12345678 << 1) | 1 = 0x2468acf1: status 0xf1. The reason names the whole value the
    // 32-bit outl carried.
    let r = quick(&g, "exit=0x12345678", &["--json"]);
    assert_eq!(r.status, Some(0xf1), "{}", r.stderr);
    r.assert_started("exit=0x12345678");
    let j = json_outcome(&r);
    assert_eq!(j["end"], "debug-exit");
    assert_eq!(j["exit_status"], 0xf1);
    let reason = j["reason"].as_str().unwrap();
    assert!(reason.contains("0x12345678"), "{reason}");
    // 0xffffffff, in decimal: (v << 1) | 1 has the low byte 0xff.
    let r = quick(&g, "exit=4294967295", &[]);
    r.assert_quiet_end("exit=4294967295", 0xff);
}

// ---------------------------------------------------------------------------------------
// Status 0: halted for good

#[test]
fn halt_with_interrupts_off_is_status_0() {
    let Some(g) = behave() else { return };
    quick(&g, "halt", &[]).assert_quiet_end("halt", 0);
    let r = quick(&g, "halt", &["--json"]);
    assert_eq!(r.status, Some(0));
    assert_eq!(json_outcome(&r)["end"], "halted");
}

#[test]
fn smp_halt_counts_an_ap_never_started_as_halted() {
    let Some(g) = behave() else { return };
    // The BSP halts with interrupts off without sending INIT/SIPI: the AP waits for good.
    quick(&g, "smp-halt", &["--cpus", "2"]).assert_quiet_end("smp-halt", 0);
}

// ---------------------------------------------------------------------------------------
// Status 3: the guest reset

#[test]
fn triple_fault_is_status_3() {
    let Some(g) = behave() else { return };
    // A zero-limit IDT, then ud2: #UD cannot be delivered, nor #DF: shutdown.
    quick(&g, "triple", &[]).assert_abnormal_end("triple", 3, &["reset", "triple fault"]);
}

#[test]
fn i8042_reset_is_status_3() {
    let Some(g) = behave() else { return };
    quick(&g, "reset", &[]).assert_abnormal_end("reset", 3, &["reset", "i8042"]);
}

// ---------------------------------------------------------------------------------------
// Status 4: the VM failed, or 3

#[test]
fn int3_is_an_emulation_failure_or_a_triple_fault() {
    let Some(g) = behave() else { return };
    let r = quick(&g, "int3", &[]);
    match r.status {
        // A KVM that emulates guest code in software cannot emulate int3
        // (docs/spikes/kvm-probe-findings.md): the reason, the RIP and the instruction.
        Some(4) => r.assert_abnormal_end(
            "int3",
            4,
            &["emulation failure", "rip=0x", "instruction bytes cc"],
        ),
        // Hardware KVM delivers #BP through the zero-limit IDT: a triple fault.
        Some(3) => r.assert_abnormal_end("int3", 3, &["triple fault"]),
        other => panic!(
            "int3: status {other:?}, want 4 (emulation failure) or 3 (triple fault); stderr: {}",
            r.stderr
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Status 124: --timeout

#[test]
fn endless_loop_ends_at_the_timeout() {
    let Some(g) = behave() else { return };
    let r = run(&g, "loop", 1, &[], Stdout::Read);
    r.assert_abnormal_end("loop", 124, &["timeout expired"]);
    assert!(
        r.elapsed >= Duration::from_secs(1),
        "ended before its 1 s timeout: {:?}",
        r.elapsed
    );
    // A hang guard, not a performance bound.
    assert!(
        r.elapsed < Duration::from_secs(20),
        "--timeout 1 took {:?} to end the run",
        r.elapsed
    );
}

#[test]
fn halt_with_interrupts_on_is_not_the_end() {
    let Some(g) = behave() else { return };
    // sti; hlt with nothing programmed to interrupt: an interrupt could still come, so the
    // run goes on until the timeout.
    let r = run(&g, "idle", 1, &[], Stdout::Read);
    r.assert_abnormal_end("idle", 124, &["timeout expired"]);
}

// ---------------------------------------------------------------------------------------
// Hostile guests

#[test]
fn storm_of_unclaimed_ports_and_mmio_reads_all_ones() {
    let Some(g) = behave() else { return };
    let r = run(&g, "storm", 120, &["--json"], Stdout::Read);
    let out = r.stdout_text();
    assert_eq!(r.status, Some(EXIT_PASS), "{out}\n{}", r.stderr);
    r.assert_started("storm");
    let line = out
        .lines()
        .find(|l| l.starts_with("ANYBOOT-BEHAVE storm bad_reads="))
        .unwrap_or_else(|| panic!("no storm report: {out}"));
    let field = |k: &str| -> u64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k)?.strip_prefix('=')?.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {line}"))
    };
    assert_eq!(field("bad_reads"), 0, "{line}");
    // Every port but COM1 (8), the i8042 (2), the debug exit (4) and the 11 that KVM's
    // in-kernel PIC, ELCR, PIT and speaker answer, plus 16 + 16 bytes of rep insb/insl and
    // an inw and an inl.
    let checked_ports = 0x10000 - 8 - 2 - 4 - 11;
    assert_eq!(field("port_reads"), checked_ports + 34, "{line}");
    // Every MiB from the end of RAM to 3 GiB, every 64 KiB from 3 GiB to 4 GiB.
    let mmio = (0xc000_0000 - (u64::from(MEM_MIB) << 20)) / (1 << 20) + 0x4000_0000 / 0x1_0000;
    assert_eq!(field("mmio_reads"), mmio, "{line}");
    let j = json_outcome(&r);
    assert_eq!(j["end"], "debug-exit");
    // Each port write and read and each MMIO write and read reached anyboot and was counted
    // (KVM may batch the string reads into fewer exits).
    let unclaimed = j["unclaimed_accesses"].as_u64().unwrap();
    assert!(
        unclaimed >= 2 * checked_ports + 2 * mmio,
        "unclaimed accesses counted: {unclaimed}"
    );
}

#[test]
fn scribbling_over_the_boot_structures_does_not_matter() {
    let Some(g) = behave() else { return };
    let r = quick(&g, "scribble", &[]);
    r.assert_quiet_end("scribble", EXIT_PASS);
    assert!(
        r.stdout_text().ends_with("ANYBOOT-BEHAVE scribble done\n"),
        "{}",
        r.stdout_text()
    );
}

/// The `rep-ins` report: what 16 bytes of `rep insb` from COM1's LSR gave.
const REP_INS_WANT: &str = "ANYBOOT-BEHAVE rep-ins lsr=60606060606060606060606060606060\n";

#[test]
fn uart_string_read_reads_the_register_each_time() {
    let Some(g) = behave() else { return };
    let r = quick(&g, "rep-ins", &[]);
    assert!(
        r.stdout_text().contains(REP_INS_WANT),
        "{}",
        r.stdout_text()
    );
    r.assert_quiet_end("rep-ins", EXIT_PASS);
}

#[test]
fn uart_string_read_under_qemu_is_the_reference() {
    // The same guest under QEMU's 16550: proves the guest's expectation, not anyboot's KVM.
    if tool_or_skip("qemu-system-x86_64").is_none() {
        return;
    }
    let Some(g) = guest_or_skip("behave") else {
        return;
    };
    let out = Command::new(assert_cmd::cargo::cargo_bin!("anyboot"))
        .arg("run")
        .arg(&g)
        .args(["--backend", "qemu", "--mem", "64", "--cmdline", "rep-ins"])
        .args(["--timeout", "60"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(REP_INS_WANT), "{stdout}");
    assert_eq!(out.status.code(), Some(EXIT_PASS), "{stdout}");
}

/// Check a `flood=<mib>` run's stdout: the start line, exactly `mib` MiB of the pattern, the
/// end line.
fn check_flood(r: &Run, mib: usize) {
    let word = format!("flood={mib}");
    r.assert_started(&word);
    let head = format!("{BEHAVE_MARKER} {word} start\n").len();
    let n = mib << 20;
    let tail = format!("{BEHAVE_MARKER} flood done bytes={n}\n");
    let body = &r.stdout[head..];
    assert!(
        body.len() == n + tail.len() && body.ends_with(tail.as_bytes()),
        "{word}: {} bytes after the start line, want {n} and the end line {tail:?}; \
         stdout ends {:?}",
        body.len(),
        String::from_utf8_lossy(&body[body.len().saturating_sub(100)..])
    );
    if let Some(i) = (0..n).find(|&i| body[i] != FLOOD_PATTERN[i % 64]) {
        panic!(
            "{word}: flood byte {i} is {:#04x}, want {:#04x}",
            body[i],
            FLOOD_PATTERN[i % 64]
        );
    }
}

#[test]
fn serial_flood_arrives_whole() {
    let Some(g) = behave() else { return };
    // About 10-20 µs per byte on a software-emulating KVM: 2 MiB (32 times a pipe's buffer)
    // takes half a minute.
    let r = run(&g, "flood=2", 600, &[], Stdout::Read);
    eprintln!(
        "flood=2: {:?}, peak RSS {:?} KiB",
        r.elapsed, r.peak_rss_kib
    );
    r.assert_quiet_end("flood=2", EXIT_PASS);
    check_flood(&r, 2);
}

#[test]
fn serial_flood_survives_a_stalled_reader() {
    let Some(g) = behave() else { return };
    // Nothing read for 2 s: the 64 KiB pipe fills and the guest's writes wait for it.
    let r = run(
        &g,
        "flood=1",
        600,
        &[],
        Stdout::ReadAfter(Duration::from_secs(2)),
    );
    eprintln!(
        "flood=1: {:?}, peak RSS {:?} KiB",
        r.elapsed, r.peak_rss_kib
    );
    r.assert_quiet_end("flood=1", EXIT_PASS);
    check_flood(&r, 1);
}

#[test]
fn serial_flood_into_a_pipe_nobody_reads_ends_at_the_timeout() {
    let Some(g) = behave() else { return };
    let r = run(&g, "flood=100", 2, &[], Stdout::Stalled);
    eprintln!(
        "flood=100: {:?}, peak RSS {:?} KiB",
        r.elapsed, r.peak_rss_kib
    );
    r.assert_abnormal_end("flood=100", 124, &["timeout expired"]);
    assert!(
        r.stdout.len() > 4096,
        "the pipe was not filled: {} bytes",
        r.stdout.len()
    );
    // A hang guard: the vCPU thread is stuck writing to the full pipe.
    assert!(
        r.elapsed < Duration::from_secs(30),
        "--timeout 2 with a full stdout pipe took {:?}",
        r.elapsed
    );
    // Output waits in the pipe, not in anyboot's memory.
    let peak = r
        .peak_rss_kib
        .expect("VmHWM was never read while anyboot ran");
    assert!(
        peak < 100 * 1024,
        "peak resident set {peak} KiB: the output is being buffered"
    );
}

// ---------------------------------------------------------------------------------------
// The guest itself

#[test]
fn behave_rejects_an_unknown_word() {
    let Some(g) = behave() else { return };
    let r = quick(&g, "no-such-behaviour", &[]);
    r.assert_quiet_end("no-such-behaviour", 35);
    assert!(
        r.stdout_text().contains("ANYBOOT-BEHAVE unknown\n"),
        "{}",
        r.stdout_text()
    );
}

#[test]
fn flood_check_catches_lost_and_wrong_bytes() {
    // No KVM needed: the checker the flood tests rely on fails when it should.
    let good = |mib: usize| -> Vec<u8> {
        let mut v = format!("{BEHAVE_MARKER} flood={mib} start\n").into_bytes();
        v.extend((0..mib << 20).map(|i| FLOOD_PATTERN[i % 64]));
        v.extend(format!("{BEHAVE_MARKER} flood done bytes={}\n", mib << 20).bytes());
        v
    };
    let as_run = |stdout: Vec<u8>| Run {
        status: Some(EXIT_PASS),
        stdout,
        stderr: String::new(),
        elapsed: Duration::ZERO,
        peak_rss_kib: None,
    };
    check_flood(&as_run(good(1)), 1);
    let mut lost = good(1);
    lost.remove(100_000);
    let mut wrong = good(1);
    wrong[200_000] ^= 1;
    let mut extra = good(1);
    extra.insert(300_000, b'x');
    for (what, bad) in [("lost", lost), ("wrong", wrong), ("extra", extra)] {
        let r = as_run(bad);
        let caught = std::panic::catch_unwind(|| check_flood(&r, 1)).is_err();
        assert!(caught, "a {what} byte went unnoticed");
    }
}

/// On a terminal, Ctrl-A x ends the run with status 0, as in QEMU. `script` (util-linux) gives
/// `anyboot run` a pseudo-terminal as stdin; the test types Ctrl-A x into it once the guest
/// is looping.
#[test]
fn ctrl_a_x_on_a_terminal_quits() {
    let Some(g) = behave() else { return };
    let Some(script) = tool_or_skip("script") else {
        return;
    };
    let anyboot = assert_cmd::cargo::cargo_bin!("anyboot");
    let inner = format!(
        "'{}' run '{}' --backend kvm --mem 64 --cmdline loop --timeout 30 --json",
        anyboot.display(),
        g.display()
    );
    let mut child = Command::new(script)
        .args(["-qec", &inner, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"\x01x").unwrap();
    }
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("\"end\":\"quit\""), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "Ctrl-A x was not seen"
    );
}
