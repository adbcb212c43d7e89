//! `anyboot run`: boot a plan under KVM directly, or under QEMU where /dev/kvm is unusable.
//!
//! Exit statuses with the KVM backend (documented in the README and `anyboot run --help`):
//! 0 the guest powered off or halted for good (or Ctrl-A x); (v << 1) | 1 the guest wrote v to
//! the isa-debug-exit port 0xf4; 2 bad image or options; 3 the guest reset (i8042 reset,
//! triple fault); 4 the VM failed (KVM internal error, emulation failure, unhandled exit) or
//! could not be set up; 124 `--timeout` expired. With the QEMU backend QEMU's own status
//! passes through (0 for power-off and reset alike, as `-no-reboot` makes a reset an exit),
//! with 2 and 124 as above.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::{Failure, PlanArgs, one_line};

/// Status: the VM failed.
pub const EXIT_VM_FAILED: u8 = 4;
/// Status: `--timeout` expired (as timeout(1)).
pub const EXIT_TIMEOUT: u8 = 124;

/// Which VMM runs the guest.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendArg {
    /// anyboot's own KVM launcher when /dev/kvm works, else QEMU with TCG.
    Auto,
    /// anyboot's own KVM launcher.
    Kvm,
    /// qemu-system-x86_64 -M microvm running `anyboot emit qemu`'s command line.
    Qemu,
}

/// `anyboot run`'s own options.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// End the VM after this many seconds (exit status 124).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Print microseconds from launch to the guest's first instruction, first serial byte and
    /// exit (on stderr).
    #[arg(long)]
    pub time: bool,
    /// Boot this static binary as /init of an initramfs built on the fly.
    #[arg(long, value_name = "BINARY", conflicts_with = "initrd")]
    pub init: Option<PathBuf>,
    /// The VMM.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendArg,
    /// The accelerator of the QEMU backend (auto: KVM when /dev/kvm can create a VM).
    #[arg(long, value_enum, default_value = "auto")]
    pub accel: crate::AccelArg,
    /// Hide CPUID features from the guest (KVM backend only), e.g. `cx16,xsave`: for hosts whose
    /// KVM cannot emulate them. Names: cx16 pcid x2apic tsc_deadline_timer xsave avx rdrand
    /// avx2 smep rdseed smap fsgsbase.
    #[arg(long, value_name = "FEATURE,...", value_delimiter = ',')]
    pub cpu_disable: Vec<String>,
    /// Print the outcome as JSON on stderr when the VM ends (stdout is the guest's console).
    #[arg(long)]
    pub json: bool,
}

/// The outcome `--json` prints.
#[derive(serde::Serialize)]
struct Report<'a> {
    backend: &'a str,
    /// halted, debug-exit, reset, failed, timeout, quit (kvm); exited, timeout (qemu).
    end: &'a str,
    exit_status: u8,
    reason: String,
    first_instruction_us: Option<u64>,
    first_serial_us: Option<u64>,
    exit_us: u64,
    serial_bytes: Option<u64>,
    unclaimed_accesses: Option<u64>,
}

/// A temporary file removed on drop.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn build_init(init: &Path) -> Result<TempFile, Failure> {
    let bytes = std::fs::read(init)
        .map_err(|e| Failure::BadInput(format!("{}: cannot read --init: {e}", init.display())))?;
    let archive = loader::initramfs::init_archive(&bytes)
        .map_err(|e| Failure::BadInput(one_line(init, &e)))?;
    // create_new (O_EXCL): never follow a link someone planted under the predictable name.
    let path = std::env::temp_dir().join(format!("anyboot-init-{}.cpio", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("creating the initramfs {}", path.display()))?;
    let temp = TempFile(path);
    std::io::Write::write_all(&mut file, &archive)
        .with_context(|| format!("writing the initramfs {}", temp.0.display()))?;
    Ok(temp)
}

/// Run the command; returns the exit status.
pub fn run(
    launch: Instant,
    kernel: &Path,
    plan_args: &mut PlanArgs,
    args: &RunArgs,
) -> Result<u8, Failure> {
    let timeout = match args.timeout {
        None => None,
        Some(t) if t.is_finite() && t > 0.0 && t < 1e9 => Some(Duration::from_secs_f64(t)),
        Some(t) => {
            return Err(Failure::BadInput(format!(
                "--timeout {t}: a positive number of seconds"
            )));
        }
    };
    let _initramfs = match &args.init {
        Some(init) => {
            let t = build_init(init)?;
            plan_args.initrd = Some(t.0.clone());
            Some(t)
        }
        None => None,
    };
    let (report, plan) = crate::make_plan(kernel, plan_args)?;
    let backend = match args.backend {
        BackendArg::Kvm => BackendArg::Kvm,
        BackendArg::Qemu => BackendArg::Qemu,
        BackendArg::Auto => match backends::kvm::probe() {
            Ok(()) => BackendArg::Kvm,
            Err(e) => {
                eprintln!("anyboot: {e}; running under qemu-system-x86_64 with TCG instead");
                BackendArg::Qemu
            }
        },
    };
    if backend == BackendArg::Kvm && !plan.disks.is_empty() {
        return Err(Failure::BadInput(format!(
            "{}: --disk: the KVM backend has no block devices; use --backend qemu",
            kernel.display()
        )));
    }
    if let Some(e) = &plan.extraction {
        backends::extract::ensure_extracted(e, &report)
            .map_err(|e| Failure::BadInput(one_line(kernel, &e)))?;
    }
    let mut cpu_disable = Vec::new();
    for name in &args.cpu_disable {
        match backends::kvm::cpu::feature(name) {
            Some(f) => cpu_disable.push(f),
            None => {
                let known: Vec<&str> = backends::kvm::cpu::FEATURES
                    .iter()
                    .map(|f| f.name)
                    .collect();
                return Err(Failure::BadInput(format!(
                    "--cpu-disable {name}: unknown feature (known: {})",
                    known.join(" ")
                )));
            }
        }
    }
    let (status, rep) = match backend {
        BackendArg::Qemu => run_qemu(launch, kernel, &plan, timeout, args.accel)?,
        _ => run_kvm(launch, kernel, &plan, timeout, cpu_disable)?,
    };
    if args.time {
        let us = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
        eprintln!(
            "anyboot: time (us from launch): first-instruction {} first-serial-byte {} exit {}",
            us(rep.first_instruction_us),
            us(rep.first_serial_us),
            rep.exit_us
        );
    }
    if args.json {
        eprintln!(
            "{}",
            serde_json::to_string(&rep).context("writing the JSON outcome")?
        );
    } else if matches!(rep.end, "reset" | "failed" | "timeout") {
        // Quiet by default, but an abnormal end always says why, on one line.
        eprintln!("anyboot: {}", rep.reason);
    }
    Ok(status)
}

fn run_kvm(
    launch: Instant,
    kernel: &Path,
    plan: &loader::plan::BootPlan,
    timeout: Option<Duration>,
    cpu_disable: Vec<backends::kvm::cpu::Feature>,
) -> Result<(u8, Report<'static>), Failure> {
    use backends::kvm;
    // Unclaimed port and MMIO accesses are logged (at most 1000 lines) with ANYBOOT_LOG=debug.
    kvm::devices::set_debug(std::env::var("ANYBOOT_LOG").is_ok_and(|v| v == "debug"));
    let opts = kvm::RunOptions {
        launch,
        timeout,
        serial: kvm::SerialSink::Stdout,
        console: kvm::ConsoleMode::Stdin,
        cpu_disable,
    };
    let (out, teardown) = kvm::run_keep(plan, &opts).map_err(|e| match e {
        // The image or the options cannot be booted as planned: bad input.
        kvm::KvmError::Boot(_) | kvm::KvmError::File { .. } => {
            Failure::BadInput(one_line(kernel, &e))
        }
        other => Failure::Setup(format!("KVM set-up failed: {}", crate::error_chain(&other))),
    })?;
    // The guest's end is known: report it without waiting for KVM to tear the VM down.
    teardown.after_exit();
    let status = out.exit.status();
    Ok((
        status,
        Report {
            backend: "kvm",
            end: match out.exit {
                kvm::Exit::Halted => "halted",
                kvm::Exit::DebugExit(_) => "debug-exit",
                kvm::Exit::Reset(_) => "reset",
                kvm::Exit::Failed(_) => "failed",
                kvm::Exit::Timeout => "timeout",
                kvm::Exit::Quit => "quit",
            },
            exit_status: status,
            reason: out.exit.describe(),
            first_instruction_us: out.timings.first_instruction_us,
            first_serial_us: out.timings.first_serial_us,
            exit_us: out.timings.exit_us,
            serial_bytes: Some(out.serial_bytes),
            unclaimed_accesses: Some(out.unclaimed_accesses),
        },
    ))
}

fn run_qemu(
    launch: Instant,
    kernel: &Path,
    plan: &loader::plan::BootPlan,
    timeout: Option<Duration>,
    accel: crate::AccelArg,
) -> Result<(u8, Report<'static>), Failure> {
    let mut argv = backends::qemu::argv(
        plan,
        &backends::qemu::QemuOptions {
            accel: accel.resolve(),
            ..Default::default()
        },
    )
    .map_err(|e| Failure::BadInput(one_line(kernel, &e)))?;
    // The same exit convention as the KVM backend.
    argv.extend(backends::qemu::DEBUG_EXIT_DEVICE.map(String::from));
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", argv[0]))?;
    let deadline = timeout.map(|t| Instant::now() + t);
    let status = loop {
        if let Some(s) = child.try_wait().context("waiting for QEMU")? {
            break Some(s);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            backends::qemu::terminate(&mut child, Duration::from_secs(1));
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let exit_us = u64::try_from(launch.elapsed().as_micros()).unwrap_or(u64::MAX);
    let (code, end, reason) = match status {
        None => (EXIT_TIMEOUT, "timeout", "timeout expired".to_owned()),
        Some(s) => match s.code() {
            Some(c) => (
                u8::try_from(c & 0xff).unwrap_or(EXIT_VM_FAILED),
                "exited",
                format!("QEMU exited with status {c}"),
            ),
            None => (EXIT_VM_FAILED, "failed", format!("QEMU ended by {s}")),
        },
    };
    Ok((
        code,
        Report {
            backend: "qemu",
            end,
            exit_status: code,
            reason,
            first_instruction_us: None,
            first_serial_us: None,
            exit_us,
            serial_bytes: None,
            unclaimed_accesses: None,
        },
    ))
}
