//! `cargo xtask bench --only run`: `anyboot run` against QEMU on the PVH probe guest.
//!
//! 1. **Launch → exit**, one VM at a time: `anyboot run pvh32 --mem 128 --backend kvm --time
//!    --json` and `qemu-system-x86_64 -M microvm -accel kvm ... -m 128` on the same guest (plus
//!    a second QEMU row with microvm's optional devices switched off), alternating A, B, C, A,
//!    B, C, ... `N` times each. Wall time is measured from just before `spawn` to `wait4`'s
//!    return; peak RSS is `wait4`'s `ru_maxrss`, CPU time its `ru_utime + ru_stime`. Every run
//!    must exit with status 33 (the guest wrote 0x10 to the isa-debug-exit port 0xf4) after
//!    printing a probe report that says `result=PASS`; anything else stops the benchmark.
//!    anyboot's own `--time --json` figures (µs from its `main` to the guest's first
//!    instruction, first serial byte, and exit) are collected from the same runs.
//! 2. **Launch rate**: `L` launches of the same command with `P` in flight at any time (default
//!    P = 2 × cores); the figure is launches per second of wall time per core. The same for
//!    QEMU with fewer launches.
//!
//! Results: a table on stdout and `<target>/bench/run.json`.
//!
//! Skips loudly (and successfully) when `/dev/kvm` cannot be opened or does not answer
//! `KVM_GET_API_VERSION`; without `qemu-system-x86_64`, or when QEMU cannot run the guest, the
//! QEMU rows are skipped loudly.

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyboot_fixtures::guests::{EXIT_PASS, ProbeReport};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::bench::{
    Reaped, cpu_s, kib_to_mib, median, percentile, reap, reap_any, rss_floor_kib, use_fork,
};
use crate::util::display;

/// Which guest the run benchmarks boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestKind {
    /// The PVH probe guest `pvh32`: checks everything the entry hands it, then reports (about
    /// 14 ms of guest time on a software-emulating KVM).
    Probe,
    /// The `behave` guest with `exit=16`: prints one line and exits at once, so what is
    /// measured is the VMM's own launch and teardown.
    Minimal,
}

impl GuestKind {
    /// The built guest's name.
    fn name(self) -> &'static str {
        match self {
            GuestKind::Probe => "pvh32",
            GuestKind::Minimal => "behave",
        }
    }

    /// The command line it is given.
    fn cmdline(self) -> &'static str {
        match self {
            GuestKind::Probe => "console=ttyS0",
            GuestKind::Minimal => "exit=16",
        }
    }

    /// Whether its console output is a passing run.
    fn passed(self, stdout: &str) -> bool {
        match self {
            GuestKind::Probe => ProbeReport::parse(stdout)
                .is_some_and(|r| r.passed() && r.get("guest") == Some(self.name())),
            GuestKind::Minimal => stdout.contains("ANYBOOT-BEHAVE exit=16 start"),
        }
    }
}
/// Guest RAM, MiB, for every VMM.
const MEM_MIB: &str = "128";
/// The anyboot speed-up over QEMU the issue asks for (median wall time, launch to exit).
const TARGET_SPEEDUP: f64 = 15.0;
/// The anyboot peak-RSS reduction the issue asks for (median `ru_maxrss`).
const TARGET_RSS: f64 = 10.0;
/// Launches per second per core the issue asks for (Firecracker states 5).
const TARGET_RATE: f64 = 100.0;

/// `-cpu` values tried in order: `host` fails on hosts whose KVM refuses QEMU's write of
/// `MSR_IA32_ARCH_CAPABILITIES` (0x10a), as on the development machine.
const QEMU_CPUS: [&str; 2] = ["host", "host,-arch-capabilities"];

/// The run benchmark's settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Sequential runs of each command.
    pub runs: usize,
    /// anyboot launches for the launch rate.
    pub launches: usize,
    /// QEMU launches for the launch rate (0: skip).
    pub qemu_launches: usize,
    /// Launches in flight.
    pub jobs: usize,
    /// The guest.
    pub guest: GuestKind,
}

/// One of the commands compared.
#[derive(Debug)]
struct Vmm {
    /// Short name for the table.
    label: String,
    /// Whether this is anyboot (its stderr carries the `--json` report).
    anyboot: bool,
    /// The guest it boots.
    guest: GuestKind,
    program: PathBuf,
    args: Vec<String>,
}

impl Vmm {
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args);
        cmd
    }

    fn display(&self) -> String {
        display(&self.command())
    }
}

/// anyboot's `--json` timings of one run, µs from its `main`.
#[derive(Debug, Clone, Copy)]
struct Internal {
    first_instruction_us: u64,
    first_serial_us: u64,
    exit_us: u64,
}

/// Picks one of [`Internal`]'s timings.
type Field = fn(&Internal) -> u64;

/// All sequential runs of one command.
#[derive(Debug)]
struct Series {
    vmm: Vmm,
    runs: Vec<Reaped>,
    internal: Vec<Internal>,
}

/// Summary statistics of a sample.
#[derive(Debug, Clone, Copy)]
struct Stats {
    median: f64,
    min: f64,
    p90: f64,
    max: f64,
}

impl Stats {
    fn of(values: &[f64]) -> Stats {
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Stats {
            median: median(values.to_vec()),
            min,
            p90: percentile(values.to_vec(), 0.9),
            max,
        }
    }

    fn to_json(self) -> Value {
        json!({"median": self.median, "min": self.min, "p90": self.p90, "max": self.max})
    }
}

impl Series {
    fn wall(&self) -> Stats {
        Stats::of(&self.runs.iter().map(|r| r.wall_s).collect::<Vec<_>>())
    }

    fn rss_mib(&self) -> Stats {
        Stats::of(
            &self
                .runs
                .iter()
                .map(|r| kib_to_mib(r.maxrss_kib))
                .collect::<Vec<_>>(),
        )
    }

    fn cpu(&self) -> Stats {
        Stats::of(&self.runs.iter().map(|r| r.cpu_s).collect::<Vec<_>>())
    }

    fn internal(&self, f: Field) -> Option<Stats> {
        if self.internal.is_empty() {
            return None;
        }
        #[allow(clippy::cast_precision_loss)] // microsecond counts are far below 2^52
        let values: Vec<f64> = self.internal.iter().map(|i| f(i) as f64).collect();
        Some(Stats::of(&values))
    }

    /// Per run, µs of wall time outside anyboot's `main` → exit span: fork, `exec`, the
    /// dynamic loader and Rust's start-up before it, process teardown (with the VM's) after.
    fn outside_main(&self) -> Option<Stats> {
        if self.internal.is_empty() {
            return None;
        }
        #[allow(clippy::cast_precision_loss)] // microsecond counts are far below 2^52
        let values: Vec<f64> = self
            .runs
            .iter()
            .zip(&self.internal)
            .map(|(r, i)| r.wall_s * 1e6 - i.exit_us as f64)
            .collect();
        Some(Stats::of(&values))
    }

    fn to_json(&self) -> Value {
        let internal = |f: Field| self.internal(f).map(Stats::to_json);
        json!({
            "label": self.vmm.label,
            "command": self.vmm.display(),
            "wall_s": self.runs.iter().map(|r| r.wall_s).collect::<Vec<_>>(),
            "maxrss_kib": self.runs.iter().map(|r| r.maxrss_kib).collect::<Vec<_>>(),
            "cpu_s": self.runs.iter().map(|r| r.cpu_s).collect::<Vec<_>>(),
            "wall": self.wall().to_json(),
            "maxrss_mib": self.rss_mib().to_json(),
            "cpu": self.cpu().to_json(),
            "internal_us": if self.vmm.anyboot {
                json!({
                    "first_instruction": internal(|i| i.first_instruction_us),
                    "first_serial_byte": internal(|i| i.first_serial_us),
                    "exit": internal(|i| i.exit_us),
                    "outside_main": self.outside_main().map(Stats::to_json),
                })
            } else {
                Value::Null
            },
        })
    }
}

/// The outcome of a launch-rate run.
#[derive(Debug)]
struct Rate {
    label: String,
    launches: usize,
    jobs: usize,
    cores: usize,
    wall_s: f64,
    per_launch: Vec<Reaped>,
}

impl Rate {
    fn per_second(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)] // launch counts are small
        let n = self.launches as f64;
        n / self.wall_s
    }

    fn per_second_per_core(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)] // core counts are small
        let cores = self.cores as f64;
        self.per_second() / cores
    }

    fn latency(&self) -> Stats {
        Stats::of(&self.per_launch.iter().map(|r| r.wall_s).collect::<Vec<_>>())
    }

    fn cpu(&self) -> Stats {
        Stats::of(&self.per_launch.iter().map(|r| r.cpu_s).collect::<Vec<_>>())
    }

    fn rss_mib(&self) -> Stats {
        Stats::of(
            &self
                .per_launch
                .iter()
                .map(|r| kib_to_mib(r.maxrss_kib))
                .collect::<Vec<_>>(),
        )
    }

    fn to_json(&self) -> Value {
        json!({
            "label": self.label,
            "launches": self.launches,
            "jobs": self.jobs,
            "cores": self.cores,
            "wall_s": self.wall_s,
            "vms_per_s": self.per_second(),
            "vms_per_s_per_core": self.per_second_per_core(),
            "launch_wall": self.latency().to_json(),
            "launch_cpu": self.cpu().to_json(),
            "launch_maxrss_mib": self.rss_mib().to_json(),
        })
    }
}

/// Runs the `anyboot run` benchmarks; `anyboot` is the release binary, `work` the scratch
/// folder (`<target>/bench`).
pub fn bench(anyboot: &Path, work: &Path, settings: Settings) -> Result<()> {
    if let Err(why) = kvm_usable() {
        loud_skip(&format!(
            "the `anyboot run` benchmarks need a usable /dev/kvm ({why}); nothing measured"
        ));
        return Ok(());
    }
    let kind = settings.guest;
    let guest = copy_guest(work, kind)?;
    eprintln!("guest: {} --cmdline {}", guest.display(), kind.cmdline());

    let mut a = Vmm {
        label: "A anyboot run".into(),
        anyboot: true,
        guest: kind,
        program: anyboot.to_path_buf(),
        args: Vec::new(),
    };
    a.args.extend(
        [
            "run",
            &guest.to_string_lossy(),
            "--mem",
            MEM_MIB,
            "--cmdline",
            kind.cmdline(),
            "--backend",
            "kvm",
            "--time",
            "--json",
        ]
        .map(String::from),
    );
    check_run(&a, work).context("the warm-up run of anyboot failed")?;

    let qemus = qemu_vmms(&guest, kind, work);
    let mut series = vec![Series {
        vmm: a,
        runs: Vec::new(),
        internal: Vec::new(),
    }];
    series.extend(qemus.into_iter().map(|vmm| Series {
        vmm,
        runs: Vec::new(),
        internal: Vec::new(),
    }));

    eprintln!(
        "launch -> exit: {} runs each of {}, alternating...",
        settings.runs,
        series
            .iter()
            .map(|s| s.vmm.label.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for _ in 0..settings.runs {
        for s in &mut series {
            let (reaped, internal) = measure_run(&s.vmm, work)?;
            s.runs.push(reaped);
            s.internal.extend(internal);
        }
    }
    let floor_kib = rss_floor_kib()?;

    let cores = std::thread::available_parallelism()
        .map(std::num::NonZero::get)
        .unwrap_or(1);
    let mut rates = Vec::new();
    eprintln!(
        "launch rate: {} anyboot launches, {} in flight, {cores} cores...",
        settings.launches, settings.jobs
    );
    rates.push(launch_rate(
        &series[0].vmm,
        settings.launches,
        settings.jobs,
        cores,
    )?);
    if settings.qemu_launches > 0
        && let Some(q) = series.get(1)
    {
        eprintln!(
            "launch rate: {} QEMU launches, {} in flight...",
            settings.qemu_launches, settings.jobs
        );
        rates.push(launch_rate(
            &q.vmm,
            settings.qemu_launches,
            settings.jobs,
            cores,
        )?);
    }

    print_report(&series, &rates, floor_kib);

    let report = json!({
        "guest": kind.name(),
        "cmdline": kind.cmdline(),
        "mem_mib": MEM_MIB,
        "runs": settings.runs,
        "cores": cores,
        "maxrss_floor_kib": floor_kib,
        "series": series.iter().map(Series::to_json).collect::<Vec<_>>(),
        "ratios": series.iter().skip(1).map(|q| json!({
            "vs": q.vmm.label,
            "median_wall": q.wall().median / series[0].wall().median,
            "median_maxrss": q.rss_mib().median / series[0].rss_mib().median,
        })).collect::<Vec<_>>(),
        "launch_rate": rates.iter().map(Rate::to_json).collect::<Vec<_>>(),
        "targets": {
            "speedup": TARGET_SPEEDUP,
            "rss_reduction": TARGET_RSS,
            "vms_per_s_per_core": TARGET_RATE,
        },
    });
    let out = work.join("run.json");
    fs::write(&out, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", out.display()))?;
    println!("\nwrote {}", out.display());
    Ok(())
}

/// Whether /dev/kvm opens read-write and answers `KVM_GET_API_VERSION` with 12.
fn kvm_usable() -> Result<(), String> {
    use std::os::fd::AsRawFd as _;
    /// `_IO(KVMIO, 0x00)`.
    const KVM_GET_API_VERSION: libc::Ioctl = 0xae00;
    let kvm = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map_err(|e| e.to_string())?;
    // SAFETY: KVM_GET_API_VERSION takes no argument and only returns a number; the fd is open
    // for the duration of the call.
    let version = unsafe { libc::ioctl(kvm.as_raw_fd(), KVM_GET_API_VERSION, 0) };
    match version {
        12 => Ok(()),
        -1 => Err(format!(
            "KVM_GET_API_VERSION: {}",
            std::io::Error::last_os_error()
        )),
        v => Err(format!("KVM API version {v}, not 12")),
    }
}

fn loud_skip(msg: &str) {
    eprintln!("\n********************************************************************");
    eprintln!("SKIPPED: {msg}");
    eprintln!("********************************************************************\n");
}

/// Copies the probe guest out of the fixtures' build folder, which a concurrent `cargo test`
/// may rebuild (and so remove) at any time.
fn copy_guest(work: &Path, kind: GuestKind) -> Result<PathBuf> {
    let name = kind.name();
    let built = anyboot_fixtures::guests::guest_path(name).with_context(|| {
        format!(
            "the guest `{name}` was not built: anyboot-fixtures' build script needs `cc` \
             (with GNU as) and `ld` (Debian: gcc, binutils); its cargo warning says which is \
             missing"
        )
    })?;
    let copy = work.join(name);
    fs::copy(&built, &copy)
        .with_context(|| format!("copying {} to {}", built.display(), copy.display()))?;
    Ok(copy)
}

/// The QEMU commands, each checked by one run; empty (after a loud message) when QEMU is
/// missing or cannot run the guest.
fn qemu_vmms(guest: &Path, kind: GuestKind, work: &Path) -> Vec<Vmm> {
    const QEMU: &str = "qemu-system-x86_64";
    if let Err(err) = Command::new(QEMU)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        loud_skip(&format!(
            "`{QEMU}` cannot be run ({err}): no QEMU rows (Debian: qemu-system-x86)"
        ));
        return Vec::new();
    }
    // As the issue gives it, then with everything optional on microvm switched off (no
    // option ROMs, legacy PIT/PIC/RTC, ACPI): QEMU's best case for this guest.
    let machines = [
        ("B qemu microvm", "microvm"),
        (
            "C qemu microvm, minimal",
            "microvm,x-option-roms=off,pit=off,pic=off,rtc=off,acpi=off",
        ),
    ];
    let mut vmms = Vec::new();
    let mut errors = Vec::new();
    for (label, machine) in machines {
        let mut found = None;
        for cpu in QEMU_CPUS {
            let vmm = qemu_vmm(label, machine, cpu, guest, kind);
            match check_run(&vmm, work) {
                Ok(()) => {
                    found = Some(vmm);
                    break;
                }
                Err(err) => errors.push(format!("-M {machine} -cpu {cpu}: {err:#}")),
            }
        }
        vmms.extend(found);
    }
    if vmms.is_empty() {
        // Only then, as a stand-in: the PC machine (SeaBIOS and its PVH option ROM).
        for cpu in QEMU_CPUS {
            let vmm = qemu_vmm("B qemu pc", "pc", cpu, guest, kind);
            match check_run(&vmm, work) {
                Ok(()) => {
                    vmms.push(vmm);
                    break;
                }
                Err(err) => errors.push(format!("-M pc -cpu {cpu}: {err:#}")),
            }
        }
        loud_skip(&format!(
            "QEMU microvm + KVM cannot run the {} guest here; tried:\n  {}",
            kind.name(),
            errors.join("\n  ")
        ));
    } else if !errors.is_empty() {
        eprintln!("(QEMU configurations that did not work here:)");
        for e in &errors {
            eprintln!("  {e}");
        }
    }
    vmms
}

fn qemu_vmm(label: &str, machine: &str, cpu: &str, guest: &Path, kind: GuestKind) -> Vmm {
    let mut args: Vec<String> = ["-M", machine, "-accel", "kvm", "-cpu", cpu, "-kernel"]
        .map(String::from)
        .into();
    args.push(guest.to_string_lossy().into_owned());
    args.extend(
        [
            "-nodefaults",
            "-nographic",
            "-serial",
            "stdio",
            "-no-reboot",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-m",
            MEM_MIB,
            "-append",
            kind.cmdline(),
        ]
        .map(String::from),
    );
    Vmm {
        label: label.to_owned(),
        anyboot: false,
        guest: kind,
        program: PathBuf::from("qemu-system-x86_64"),
        args,
    }
}

/// One untimed run that must pass.
fn check_run(vmm: &Vmm, work: &Path) -> Result<()> {
    measure_run(vmm, work).map(|_| ())
}

/// One timed run with stdout and stderr in files, checked: exit status 33, a passing probe
/// report for the right guest, and for anyboot a `--json` outcome from the KVM backend.
fn measure_run(vmm: &Vmm, work: &Path) -> Result<(Reaped, Option<Internal>)> {
    let out_path = work.join("run.stdout");
    let err_path = work.join("run.stderr");
    let create = |p: &Path| File::create(p).with_context(|| format!("creating {}", p.display()));
    let mut cmd = vmm.command();
    cmd.stdin(Stdio::null())
        .stdout(create(&out_path)?)
        .stderr(create(&err_path)?);
    let reaped = reap(&mut cmd)?;
    let read = |p: &Path| {
        fs::read(p)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .with_context(|| format!("reading {}", p.display()))
    };
    let (stdout, stderr) = (read(&out_path)?, read(&err_path)?);
    let fail = |why: String| -> anyhow::Error {
        let mut msg = format!("`{}`: {why}", vmm.display());
        for (name, text) in [("stdout", &stdout), ("stderr", &stderr)] {
            if !text.trim().is_empty() {
                msg.push_str(&format!("\n--- {name}\n{}", text.trim_end()));
            }
        }
        anyhow::anyhow!(msg)
    };
    if !libc::WIFEXITED(reaped.status) || libc::WEXITSTATUS(reaped.status) != EXIT_PASS {
        return Err(fail(format!(
            "{}, wanted exit status {EXIT_PASS}",
            describe_status(reaped.status)
        )));
    }
    if !vmm.guest.passed(&stdout) {
        return Err(fail(format!(
            "the console does not show a passing run of the {} guest",
            vmm.guest.name()
        )));
    }
    if !vmm.anyboot {
        return Ok((reaped, None));
    }
    let json: Value = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| fail("no --json outcome on stderr".into()))?;
    if json["backend"] != "kvm" || json["end"] != "debug-exit" {
        return Err(fail(format!(
            "the outcome is not a debug-exit under the KVM backend: {json}"
        )));
    }
    let us = |key: &str| {
        json[key]
            .as_u64()
            .ok_or_else(|| fail(format!("--json outcome has no `{key}`: {json}")))
    };
    let internal = Internal {
        first_instruction_us: us("first_instruction_us")?,
        first_serial_us: us("first_serial_us")?,
        exit_us: us("exit_us")?,
    };
    Ok((reaped, Some(internal)))
}

/// `launches` runs of `vmm` with `jobs` in flight, console and stderr discarded; each must
/// exit with status 33 (only a passing probe guest writes the value that gives it).
fn launch_rate(vmm: &Vmm, launches: usize, jobs: usize, cores: usize) -> Result<Rate> {
    let mut in_flight: HashMap<libc::pid_t, (Instant, std::process::Child)> = HashMap::new();
    let mut done = Vec::with_capacity(launches);
    let mut started = 0;
    let begin = Instant::now();
    while done.len() < launches {
        while started < launches && in_flight.len() < jobs {
            let mut cmd = vmm.command();
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            use_fork(&mut cmd);
            let t = Instant::now();
            let child = cmd
                .spawn()
                .with_context(|| format!("starting `{}`", vmm.display()))?;
            let pid = libc::pid_t::try_from(child.id()).context("child pid out of range")?;
            in_flight.insert(pid, (t, child));
            started += 1;
        }
        let (pid, status, usage) = reap_any()?;
        let Some((t, child)) = in_flight.remove(&pid) else {
            bail!("reaped an unknown child {pid}");
        };
        let wall_s = t.elapsed().as_secs_f64();
        // Reaped already: dropping the handle neither waits nor kills.
        drop(child);
        if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != EXIT_PASS {
            // Let the others finish before reporting.
            for _ in 0..in_flight.len() {
                let _ = reap_any();
            }
            bail!(
                "launch {} of `{}`: {}, wanted exit status {EXIT_PASS}",
                done.len() + 1,
                vmm.display(),
                describe_status(status)
            );
        }
        done.push(Reaped {
            status,
            wall_s,
            maxrss_kib: u64::try_from(usage.ru_maxrss).context("negative ru_maxrss")?,
            cpu_s: cpu_s(&usage),
        });
    }
    Ok(Rate {
        label: vmm.label.clone(),
        launches,
        jobs,
        cores,
        wall_s: begin.elapsed().as_secs_f64(),
        per_launch: done,
    })
}

/// A wait status in words.
fn describe_status(status: libc::c_int) -> String {
    if libc::WIFEXITED(status) {
        format!("exit status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("wait status {status:#x}")
    }
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn print_report(series: &[Series], rates: &[Rate], floor_kib: u64) {
    let ms = |s: f64| s * 1000.0;
    println!(
        "\nanyboot run vs QEMU: the {} guest (command line {:?}), {MEM_MIB} MiB, {} runs each, alternating",
        series[0].vmm.guest.name(),
        series[0].vmm.guest.cmdline(),
        series[0].runs.len()
    );
    println!(
        "{:<24} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11} {:>9}",
        "command", "wall med", "min", "p90", "max", "CPU med", "RSS med", "RSS max"
    );
    for s in series {
        let (w, c, r) = (s.wall(), s.cpu(), s.rss_mib());
        println!(
            "{:<24} {:>6.1} ms {:>6.1} ms {:>6.1} ms {:>6.1} ms {:>6.1} ms {:>7.1} MiB {:>5.1} MiB",
            s.vmm.label,
            ms(w.median),
            ms(w.min),
            ms(w.p90),
            ms(w.max),
            ms(c.median),
            r.median,
            r.max
        );
    }
    let a = &series[0];
    for q in &series[1..] {
        let speed = q.wall().median / a.wall().median;
        let rss = q.rss_mib().median / a.rss_mib().median;
        println!(
            "{:<24} {:>8.1}x {:>39.1}x {:>21.1}x",
            format!("{} / A", &q.vmm.label[..1]),
            speed,
            q.cpu().median / a.cpu().median,
            rss
        );
    }
    println!(
        "(peak RSS floor: `true` started the same way reports {:.1} MiB)",
        kib_to_mib(floor_kib)
    );
    if series.len() == 1 {
        println!(
            "targets >= {TARGET_SPEEDUP}x faster, >= {TARGET_RSS}x less peak RSS: not judged \
             (no QEMU row)"
        );
    }
    for q in &series[1..] {
        let speed = q.wall().median / a.wall().median;
        let rss = q.rss_mib().median / a.rss_mib().median;
        println!(
            "target vs {}: >= {TARGET_SPEEDUP}x faster: {} ({speed:.1}x); >= {TARGET_RSS}x less \
             peak RSS: {} ({rss:.1}x)",
            q.vmm.label,
            met(speed >= TARGET_SPEEDUP),
            met(rss >= TARGET_RSS)
        );
    }

    println!("\nanyboot run --time --json, us from anyboot's main():");
    println!(
        "{:<20} {:>9} {:>9} {:>9} {:>9}",
        "event", "median", "min", "p90", "max"
    );
    let events: [(&str, Field); 3] = [
        ("first instruction", |i| i.first_instruction_us),
        ("first serial byte", |i| i.first_serial_us),
        ("exit", |i| i.exit_us),
    ];
    let rows = events
        .iter()
        .map(|(name, f)| (*name, a.internal(*f)))
        .chain([("wall - exit", a.outside_main())]);
    for (name, stats) in rows {
        if let Some(s) = stats {
            println!(
                "{name:<20} {:>9.0} {:>9.0} {:>9.0} {:>9.0}",
                s.median, s.min, s.p90, s.max
            );
        }
    }
    println!(
        "(wall - exit: fork, exec and start-up before main, process and VM teardown after exit)"
    );

    println!("\nlaunch rate (launch -> exit, in parallel):");
    println!(
        "{:<24} {:>8} {:>4} {:>7} {:>8} {:>10} {:>11} {:>11} {:>9}",
        "command",
        "launches",
        "jobs",
        "wall",
        "VMs/s",
        "VMs/s/core",
        "launch med",
        "launch p90",
        "CPU med"
    );
    for r in rates {
        let (lat, cpu) = (r.latency(), r.cpu());
        println!(
            "{:<24} {:>8} {:>4} {:>5.2} s {:>8.1} {:>10.1} {:>8.1} ms {:>8.1} ms {:>6.1} ms",
            r.label,
            r.launches,
            r.jobs,
            r.wall_s,
            r.per_second(),
            r.per_second_per_core(),
            ms(lat.median),
            ms(lat.p90),
            ms(cpu.median)
        );
    }
    if let Some(r) = rates.first() {
        println!(
            "target: >= {TARGET_RATE} VMs/s/core: {} ({:.1} on {} cores)",
            met(r.per_second_per_core() >= TARGET_RATE),
            r.per_second_per_core(),
            r.cores
        );
    }
}
