//! `anyboot`: inspect a kernel image and boot it anywhere.
//!
//! Exit statuses (stable): 0 success; 2 bad image or bad options (one line on stderr naming
//! the file and the rule broken); 1 any other failure (e.g. stdout closed). `anyboot run` adds
//! the guest's own statuses (see `run.rs`): (v << 1) | 1 debug exit, 3 reset, 4 VM failed,
//! 124 timeout.

mod render;
mod run;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// Exit status for a bad image or bad options.
const EXIT_BAD_INPUT: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "anyboot",
    version,
    about = "Inspect a kernel image and boot it anywhere: PVH, the Linux boot protocol, multiboot",
    long_about = "anyboot reads a kernel image (ELF notes, bzImage setup header and its compressed \
payload, multiboot header) and tells every way it can be booted.",
    after_help = "Examples:\n  anyboot inspect /boot/vmlinuz-$(uname -r)\n  anyboot inspect --json vmlinux | jq .pvh_entry\n  anyboot plan vmlinuz --initrd initrd.img --mem 256\n\nExit status: 0 success, 2 bad image or options, 1 other failure."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Report a kernel image's format, entry points, Xen notes, bzImage and multiboot facts.
    #[command(
        after_help = "Examples:\n  anyboot inspect /boot/vmlinuz-6.1.0-28-cloud-amd64\n  anyboot inspect --json netbsd-MICROVM | jq '.xen_notes[] | select(.name == \"PHYS32_ENTRY\")'\n\nFor a bzImage the payload is decompressed as a stream only as far as the inner vmlinux's\nnotes, so this also tells whether a bzImage is PVH-capable.\n\nThe --json document is described in docs/inspect-json.md."
    )]
    Inspect {
        /// The kernel image: ELF (vmlinux, BSD kernel, unikernel), bzImage, or multiboot binary.
        kernel: PathBuf,
        /// Print a JSON document instead of the text report.
        #[arg(long)]
        json: bool,
    },
    /// Work out how to boot a kernel: protocol and why, segments, memory map, boot structures,
    /// initrd placement, command line, OS profile.
    #[command(
        after_help = "Examples:\n  anyboot plan vmlinuz --initrd initrd.img --mem 256\n  anyboot plan vmlinuz --protocol pvh --json   # boot a bzImage by PVH: extracts its vmlinux\n  anyboot plan netbsd-MICROVM --disk root.img --cmdline 'root=ld0a console=com'\n\nExit status: 0 success, 2 bad image or an impossible request (the limit is named)."
    )]
    Plan {
        /// The kernel image.
        kernel: PathBuf,
        #[command(flatten)]
        opts: PlanArgs,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Emit the configuration or command line that boots a kernel on a hypervisor.
    #[command(
        after_help = "Examples:\n  anyboot emit qemu vmlinuz --initrd initrd.img --disk root.img\n  anyboot emit qemu vmlinuz --protocol pvh --accel tcg   # extracts the vmlinux, boots it by PVH\n  sh -c \"$(anyboot emit qemu vmlinuz --initrd initrd.img)\"\n  anyboot emit qemu --format json vmlinuz | jq -r '.[]'\n\nThe command line ends QEMU when the guest powers off, reboots or panics (-no-reboot, and\nreboot=t panic=-1 appended for Linux)."
    )]
    Emit {
        /// What to emit.
        #[arg(value_enum)]
        target: EmitTarget,
        /// The kernel image.
        kernel: PathBuf,
        #[command(flatten)]
        opts: PlanArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "shell")]
        format: EmitFormat,
        /// Accelerator for QEMU.
        #[arg(long, value_enum, default_value = "auto")]
        accel: AccelArg,
    },
    /// Boot a kernel: under KVM directly, or under QEMU where /dev/kvm cannot be used.
    #[command(
        after_help = "Examples:\n  anyboot run vmlinux --initrd initrd.img --cmdline 'console=ttyS0 rdinit=/bin/sh'\n  anyboot run vmlinux --init ./hello-static --timeout 10   # one program as /init\n  anyboot run probe.elf --time --cmdline smp --cpus 2\n  anyboot run bzImage --backend qemu --disk root.img\n\nThe guest's COM1 is the terminal (raw mode on a tty; Ctrl-A x quits, Ctrl-A Ctrl-A sends\nCtrl-A). --time and --json print on stderr; stdout is the guest's console.\n\nExit status (KVM backend):\n  0            the guest powered off or halted for good (or Ctrl-A x)\n  (v<<1)|1     the guest wrote v to I/O port 0xf4 (QEMU's isa-debug-exit convention)\n  2            bad image or options\n  3            the guest reset (i8042 reset, triple fault)\n  4            the VM failed (KVM internal error, emulation failure, unhandled exit)\n               or could not be set up (/dev/kvm, memory)\n  124          --timeout expired\nWith --backend qemu, QEMU's own status passes through (a reset is 0 there), plus 2 and 124."
    )]
    Run {
        /// The kernel image.
        kernel: PathBuf,
        #[command(flatten)]
        opts: PlanArgs,
        #[command(flatten)]
        run: run::RunArgs,
    },
    /// Which backends can boot a kernel, and why (kvm, qemu, xl, firecracker, cloud-hypervisor).
    #[command(
        after_help = "Examples:\n  anyboot check vmlinuz\n  anyboot check --json netbsd-MICROVM | jq '.[] | select(.verdict != \"cannot\")'"
    )]
    Check {
        /// The kernel image.
        kernel: PathBuf,
        /// Print a JSON array instead of the table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum EmitTarget {
    /// `qemu-system-x86_64 -M microvm` command line.
    Qemu,
    /// Xen `xl.cfg` (`type = "pvh"` or `"pv"`).
    Xl,
    /// Firecracker `--config-file` JSON.
    Firecracker,
    /// Cloud Hypervisor command line.
    CloudHypervisor,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum EmitFormat {
    /// One line for a POSIX shell.
    Shell,
    /// A JSON array of arguments.
    Json,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum AccelArg {
    /// KVM (`-accel kvm -cpu host,-arch-capabilities`).
    Kvm,
    /// Software emulation (`-accel tcg -icount shift=auto,sleep=off`).
    Tcg,
    /// KVM when /dev/kvm opens, else TCG.
    Auto,
}

impl AccelArg {
    /// The accelerator QEMU gets: `auto` is KVM when /dev/kvm opens.
    fn resolve(self) -> backends::qemu::Accel {
        match self {
            AccelArg::Kvm => backends::qemu::Accel::Kvm,
            AccelArg::Tcg => backends::qemu::Accel::Tcg,
            AccelArg::Auto if backends::qemu::kvm_available() => backends::qemu::Accel::Kvm,
            AccelArg::Auto => backends::qemu::Accel::Tcg,
        }
    }
}

/// Options common to `plan`, `emit` and `run`.
#[derive(clap::Args, Debug)]
struct PlanArgs {
    /// Initial ramdisk (Linux initrd; PVH module 0; multiboot module).
    #[arg(long, value_name = "FILE")]
    initrd: Option<PathBuf>,
    /// Kernel command line (default: the OS profile's, e.g. "console=ttyS0 reboot=t panic=-1").
    #[arg(long, value_name = "STRING", allow_hyphen_values = true)]
    cmdline: Option<String>,
    /// Guest memory in MiB [default: 512].
    #[arg(long, value_name = "MiB")]
    mem: Option<u64>,
    /// vCPUs [default: 1].
    #[arg(long, value_name = "N")]
    cpus: Option<u32>,
    /// A raw disk image or block device; append ",ro" for read-only. Repeatable.
    #[arg(long, value_name = "PATH[,ro]")]
    disk: Vec<String>,
    /// Force a boot protocol.
    #[arg(long, value_enum)]
    protocol: Option<ProtocolArg>,
    /// Force an OS profile (console name, root device, virtio discovery, limits).
    #[arg(long, value_enum)]
    os: Option<OsArg>,
    /// VM name [default: anyboot-NAME, NAME from the kernel file name].
    #[arg(long)]
    name: Option<String>,
    /// Where to put a vmlinux extracted from a bzImage for PVH [default:
    /// $XDG_CACHE_HOME/anyboot/extracted].
    #[arg(long, value_name = "DIR")]
    extract_to: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ProtocolArg {
    /// Xen PVH entry.
    Pvh,
    /// Linux boot protocol, 64-bit entry.
    Linux,
    /// Linux boot protocol, 32-bit entry.
    Linux32,
    /// Multiboot v1.
    Multiboot,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum OsArg {
    /// Linux.
    Linux,
    /// NetBSD.
    Netbsd,
    /// FreeBSD.
    Freebsd,
    /// Anything else.
    Generic,
}

/// The default directory for extracted vmlinux files.
fn default_extract_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("anyboot/extracted")
}

impl PlanArgs {
    fn to_options(&self) -> Result<loader::plan::PlanOptions, String> {
        use loader::plan::{Disk, OsKind, Protocol};
        let initrd = match &self.initrd {
            Some(p) => {
                let meta = std::fs::metadata(p)
                    .map_err(|e| format!("{}: cannot read the initrd: {e}", p.display()))?;
                if !meta.is_file() {
                    return Err(format!("{}: the initrd is not a regular file", p.display()));
                }
                Some((p.clone(), meta.len()))
            }
            None => None,
        };
        let disks = self
            .disk
            .iter()
            .map(|d| match d.strip_suffix(",ro") {
                Some(p) => Disk {
                    path: PathBuf::from(p),
                    read_only: true,
                },
                None => Disk {
                    path: PathBuf::from(d),
                    read_only: false,
                },
            })
            .collect();
        Ok(loader::plan::PlanOptions {
            initrd,
            cmdline: self.cmdline.clone(),
            mem_mib: self.mem,
            cpus: self.cpus,
            disks,
            protocol: self.protocol.map(|p| match p {
                ProtocolArg::Pvh => Protocol::Pvh,
                ProtocolArg::Linux => Protocol::Linux64,
                ProtocolArg::Linux32 => Protocol::Linux32,
                ProtocolArg::Multiboot => Protocol::Multiboot,
            }),
            os: self.os.map(|o| match o {
                OsArg::Linux => OsKind::Linux,
                OsArg::Netbsd => OsKind::Netbsd,
                OsArg::Freebsd => OsKind::Freebsd,
                OsArg::Generic => OsKind::Generic,
            }),
            name: self.name.clone(),
            extract_dir: Some(self.extract_to.clone().unwrap_or_else(default_extract_dir)),
        })
    }
}

/// Inspect and plan, or the one-line reason why not.
fn make_plan(
    kernel: &std::path::Path,
    args: &PlanArgs,
) -> Result<(loader::inspect::Report, loader::plan::BootPlan), Failure> {
    let report = loader::inspect::inspect_path(kernel)
        .map_err(|e| Failure::BadInput(one_line(kernel, &e)))?;
    let opts = args.to_options().map_err(Failure::BadInput)?;
    let plan = loader::plan::build(kernel, &report, &opts)
        .map_err(|e| Failure::BadInput(one_line(kernel, &e)))?;
    Ok((report, plan))
}

fn main() -> ExitCode {
    let launch = std::time::Instant::now();
    let cli = Cli::parse();
    if let Command::Run {
        kernel,
        mut opts,
        run,
    } = cli.command
    {
        return match run::run(launch, &kernel, &mut opts, &run) {
            Ok(status) => ExitCode::from(status),
            Err(f) => fail(f),
        };
    }
    match main_command(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => fail(f),
    }
}

fn fail(f: Failure) -> ExitCode {
    match f {
        Failure::Setup(msg) => {
            eprintln!("anyboot: {msg}");
            ExitCode::from(run::EXIT_VM_FAILED)
        }
        Failure::BadInput(msg) => {
            eprintln!("anyboot: {msg}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
        Failure::Other(e) => {
            // Quietly end on a closed pipe (`anyboot inspect ... | head`).
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::from(1);
            }
            eprintln!("anyboot: {e:#}");
            ExitCode::from(1)
        }
    }
}

enum Failure {
    /// A bad image or option: exit 2 with this one-line message.
    BadInput(String),
    /// The VM could not be set up (no usable /dev/kvm, an ioctl failed): exit 4.
    Setup(String),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}

/// "FILE: what is wrong: why", on one line.
fn one_line(file: &std::path::Path, err: &(dyn std::error::Error + 'static)) -> String {
    format!("{}: {}", file.display(), error_chain(err))
}

/// An error and its sources, "what: why: why", on one line (a source already at the end of
/// the message is not repeated).
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = err.to_string();
    let mut src = err.source();
    while let Some(s) = src {
        let text = s.to_string();
        if !msg.ends_with(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        src = s.source();
    }
    msg.replace('\n', " ")
}

fn main_command(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Run { .. } => {
            return Err(Failure::Other(anyhow::anyhow!(
                "internal: run is dispatched in main"
            )));
        }
        Command::Inspect { kernel, json } => {
            let report = loader::inspect::inspect_path(&kernel)
                .map_err(|e| Failure::BadInput(one_line(&kernel, &e)))?;
            let mut out = std::io::stdout().lock();
            if json {
                let doc = render::JsonDoc {
                    file: &kernel.display().to_string(),
                    report: &report,
                };
                serde_json::to_writer_pretty(&mut out, &doc).context("writing JSON")?;
                writeln!(out).context("writing JSON")?;
            } else {
                out.write_all(render::text(&kernel, &report).as_bytes())
                    .context("writing the report")?;
            }
            out.flush().context("writing the report")?;
        }
        Command::Plan { kernel, opts, json } => {
            let (_, plan) = make_plan(&kernel, &opts)?;
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut out, &plan).context("writing JSON")?;
                writeln!(out).context("writing JSON")?;
            } else {
                out.write_all(render::plan_text(&plan).as_bytes())
                    .context("writing the plan")?;
            }
            out.flush().context("writing the plan")?;
        }
        Command::Emit {
            target: EmitTarget::Xl,
            kernel,
            opts,
            ..
        } => {
            let report = loader::inspect::inspect_path(&kernel)
                .map_err(|e| Failure::BadInput(one_line(&kernel, &e)))?;
            let options = opts.to_options().map_err(Failure::BadInput)?;
            if report.pvh_entry.is_some() {
                // The same limits as every other backend (command line, initrd, memory).
                let pvh = loader::plan::PlanOptions {
                    protocol: Some(loader::plan::Protocol::Pvh),
                    ..options.clone()
                };
                loader::plan::build(&kernel, &report, &pvh)
                    .map_err(|e| Failure::BadInput(one_line(&kernel, &e)))?;
            }
            let cfg = backends::xl::emit(&kernel, &report, &options)
                .map_err(|e| Failure::BadInput(one_line(&kernel, &e)))?;
            std::io::stdout()
                .lock()
                .write_all(cfg.as_bytes())
                .context("writing xl.cfg")?;
        }
        Command::Emit {
            target: target @ (EmitTarget::Firecracker | EmitTarget::CloudHypervisor),
            kernel,
            opts,
            format,
            ..
        } => {
            let report = loader::inspect::inspect_path(&kernel)
                .map_err(|e| Failure::BadInput(one_line(&kernel, &e)))?;
            let mut options = opts.to_options().map_err(Failure::BadInput)?;
            // Firecracker releases do not load bzImages: boot a PVH-capable one after extraction.
            if matches!(target, EmitTarget::Firecracker)
                && options.protocol.is_none()
                && report.format == loader::inspect::Format::Bzimage
                && report.pvh_entry.is_some()
            {
                options.protocol = Some(loader::plan::Protocol::Pvh);
            }
            let plan = loader::plan::build(&kernel, &report, &options)
                .map_err(|e| Failure::BadInput(one_line(&kernel, &e)))?;
            let (text, notes) = match target {
                EmitTarget::Firecracker => {
                    let c = backends::firecracker::config(&plan)
                        .map_err(|e| Failure::BadInput(one_line(&kernel, &e)))?;
                    (
                        serde_json::to_string_pretty(&c.config).context("JSON")?,
                        c.notes,
                    )
                }
                _ => {
                    let (argv, notes) = backends::cloud_hypervisor::argv(&plan)
                        .map_err(|e| Failure::BadInput(one_line(&kernel, &e)))?;
                    let text = match format {
                        EmitFormat::Shell => backends::qemu::shell_line(&argv),
                        EmitFormat::Json => serde_json::to_string(&argv).context("JSON")?,
                    };
                    (text, notes)
                }
            };
            if let Some(e) = &plan.extraction {
                backends::extract::ensure_extracted(e, &report)
                    .map_err(|e| Failure::BadInput(one_line(&kernel, &e)))?;
            }
            for n in notes {
                eprintln!("anyboot: note: {n}");
            }
            writeln!(std::io::stdout().lock(), "{text}").context("writing the output")?;
        }
        Command::Check { kernel, json } => {
            let report = loader::inspect::inspect_path(&kernel)
                .map_err(|e| Failure::BadInput(one_line(&kernel, &e)))?;
            let rows = check_rows(&kernel, &report);
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut out, &rows).context("JSON")?;
                writeln!(out).context("writing")?;
            } else {
                writeln!(out, "{:<18} {:<26} reason", "backend", "verdict").context("writing")?;
                for r in &rows {
                    writeln!(out, "{:<18} {:<26} {}", r.backend, r.verdict, r.reason)
                        .context("writing")?;
                }
            }
        }
        Command::Emit {
            target: EmitTarget::Qemu,
            kernel,
            opts,
            format,
            accel,
        } => {
            let (report, plan) = make_plan(&kernel, &opts)?;
            if let Some(e) = &plan.extraction {
                backends::extract::ensure_extracted(e, &report)
                    .map_err(|e| Failure::BadInput(one_line(&kernel, &e)))?;
            }
            let accel = accel.resolve();
            let argv = backends::qemu::argv(
                &plan,
                &backends::qemu::QemuOptions {
                    accel,
                    ..Default::default()
                },
            )
            .map_err(|e| Failure::BadInput(one_line(&kernel, &e)))?;
            let mut out = std::io::stdout().lock();
            match format {
                EmitFormat::Shell => writeln!(out, "{}", backends::qemu::shell_line(&argv)),
                EmitFormat::Json => {
                    writeln!(out, "{}", serde_json::to_string(&argv).unwrap_or_default())
                }
            }
            .context("writing the command line")?;
        }
    }
    Ok(())
}

/// One row of `anyboot check`.
#[derive(serde::Serialize)]
struct CheckRow {
    backend: &'static str,
    verdict: &'static str,
    reason: String,
}

/// What each backend can do with the image: the same decisions `plan` and `emit` make.
fn check_rows(kernel: &std::path::Path, report: &loader::inspect::Report) -> Vec<CheckRow> {
    use loader::plan::{PlanOptions, Protocol, build};
    let scratch = PlanOptions {
        extract_dir: Some(std::env::temp_dir()),
        ..PlanOptions::default()
    };
    let plan = build(kernel, report, &scratch);
    let bz_pvh = report.format == loader::inspect::Format::Bzimage && report.pvh_entry.is_some();
    let pvh_plan = bz_pvh
        .then(|| {
            build(
                kernel,
                report,
                &PlanOptions {
                    protocol: Some(Protocol::Pvh),
                    ..scratch.clone()
                },
            )
            .ok()
        })
        .flatten();
    let row = |backend, verdict, reason: String| CheckRow {
        backend,
        verdict,
        reason,
    };
    let mut rows = Vec::new();
    rows.push(match &plan {
        Ok(p) if p.protocol == Protocol::Linux32 => row(
            "kvm",
            "cannot",
            "anyboot run boots Linux by its 64-bit entry or by PVH, not the 32-bit entry".into(),
        ),
        Ok(p) => match backends::kvm::probe() {
            Ok(()) => row(
                "kvm",
                "boots",
                format!("anyboot run: {} ({})", p.protocol.name(), p.reason),
            ),
            Err(e) => row(
                "kvm",
                "cannot",
                format!(
                    "{e} (anyboot run would boot it by {}; --backend qemu runs it under QEMU)",
                    p.protocol.name()
                ),
            ),
        },
        Err(e) => row("kvm", "cannot", e.to_string()),
    });
    rows.push(match &plan {
        Ok(p) => match backends::qemu::argv(p, &backends::qemu::QemuOptions::default()) {
            Ok(_) => row(
                "qemu",
                "boots",
                format!("{} ({})", p.protocol.name(), p.reason),
            ),
            Err(e) => row("qemu", "cannot", e.to_string()),
        },
        Err(e) => row("qemu", "cannot", e.to_string()),
    });
    rows.push(match backends::xl::emit(kernel, report, &scratch) {
        Ok(cfg) => row(
            "xl",
            "boots",
            cfg.lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("# written by anyboot: ")
                .to_owned(),
        ),
        Err(e) => row("xl", "cannot", e.to_string()),
    });
    let fc = |p: &loader::plan::BootPlan| backends::firecracker::config(p).map(|c| c.notes);
    rows.push(match (&plan, &pvh_plan) {
        (_, Some(pp)) => match fc(pp) {
            Ok(n) => row(
                "firecracker",
                "boots after extraction",
                format!("its inner vmlinux by PVH; {}", n.join("; ")),
            ),
            Err(e) => row("firecracker", "cannot", e.to_string()),
        },
        (Ok(p), None) => match fc(p) {
            Ok(n) => row("firecracker", "boots", n.join("; ")),
            Err(e) => row("firecracker", "cannot", e.to_string()),
        },
        (Err(e), None) => row("firecracker", "cannot", e.to_string()),
    });
    rows.push(match &plan {
        Ok(p) => match backends::cloud_hypervisor::argv(p) {
            Ok((_, n)) => row("cloud-hypervisor", "boots", n.join("; ")),
            Err(e) => row("cloud-hypervisor", "cannot", e.to_string()),
        },
        Err(e) => row("cloud-hypervisor", "cannot", e.to_string()),
    });
    rows
}
