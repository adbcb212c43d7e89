//! `cargo xtask demo`: show anyboot on a real Debian kernel.
//!
//! Steps: fetch Debian's cloud kernel; `inspect`; `check`; build a busybox initramfs; `emit qemu`
//! and boot that command line under QEMU (TCG) to init; then `anyboot run --time` of the PVH
//! probe guest under KVM (two vCPUs started through the MP table), where /dev/kvm works.
//!
//! The demo is a list of named steps sharing a [`Demo`] state; to extend it, write a
//! `fn(&mut Demo) -> Result<()>` and add it to [`STEPS`].

use anyhow::{Context, Result};

use crate::kernels::{self, Kernel};
use crate::util::{cargo, run};

/// State shared by the steps.
#[derive(Debug, Default)]
pub struct Demo {
    /// Debian's cloud kernel, set by [`fetch_cloud_kernel`].
    cloud: Option<Kernel>,
    /// The initramfs, set by [`initramfs`].
    initrd: Option<std::path::PathBuf>,
    /// The emitted QEMU argv, set by [`emit_qemu`].
    argv: Vec<String>,
}

impl Demo {
    fn cloud(&self) -> Result<&Kernel> {
        self.cloud
            .as_ref()
            .context("no cloud kernel: the `fetch cloud kernel` step must run first")
    }
}

type StepFn = fn(&mut Demo) -> Result<()>;

/// The demo, in order.
const STEPS: &[(&str, StepFn)] = &[
    ("fetch cloud kernel", fetch_cloud_kernel),
    ("anyboot inspect", inspect),
    ("anyboot check", check),
    ("busybox initramfs", initramfs),
    ("anyboot emit qemu", emit_qemu),
    ("boot it under QEMU", boot),
    ("anyboot run a probe guest under KVM", run_probe),
];

/// The marker the demo's /init prints.
const MARKER: &str = "ANYBOOT-DEMO";

/// Runs every step in order, stopping at the first failure.
pub fn cmd() -> Result<()> {
    let mut demo = Demo::default();
    let total = STEPS.len();
    for (i, (name, step)) in STEPS.iter().enumerate() {
        println!("\n==> demo [{}/{total}] {name}", i + 1);
        step(&mut demo).with_context(|| format!("demo step `{name}`"))?;
    }
    Ok(())
}

fn fetch_cloud_kernel(demo: &mut Demo) -> Result<()> {
    let cloud = kernels::select("cloud")?;
    let kernel = kernels::ensure(&cloud)?
        .pop()
        .context("`kernels --flavour cloud` returned no kernel")?;
    println!(
        "{} {} ({})",
        kernel.package,
        kernel.version,
        kernel.vmlinuz.display()
    );
    demo.cloud = Some(kernel);
    Ok(())
}

/// `cargo run --release -q -- <args>` for the anyboot binary.
fn anyboot(args: &[&std::ffi::OsStr]) -> Result<()> {
    run(cargo()
        .args(["run", "--release", "-q", "--bin", "anyboot", "--"])
        .args(args))
}

fn inspect(demo: &mut Demo) -> Result<()> {
    let vmlinuz = &demo.cloud()?.vmlinuz;
    anyboot(&["inspect".as_ref(), vmlinuz.as_os_str()])
}

fn check(demo: &mut Demo) -> Result<()> {
    let vmlinuz = &demo.cloud()?.vmlinuz;
    anyboot(&["check".as_ref(), vmlinuz.as_os_str()])
}

fn initramfs(demo: &mut Demo) -> Result<()> {
    let kernel = demo.cloud()?;
    let img = anyboot_fixtures::initramfs::busybox_initramfs(
        &kernel.root,
        MARKER,
        &anyboot_fixtures::initramfs::InitOptions::default(),
    )
    .context(
        "busybox-static is needed for the demo's initramfs (apt-get install busybox-static)",
    )?;
    let path = std::env::temp_dir().join("anyboot-demo-initrd.gz");
    std::fs::write(&path, img).with_context(|| format!("writing {}", path.display()))?;
    println!(
        "{} ({} bytes): busybox-static, /init prints \"{MARKER} CMDLINE <cmdline>\" and reboots",
        path.display(),
        std::fs::metadata(&path)?.len()
    );
    demo.initrd = Some(path);
    Ok(())
}

/// The emitted command line. TCG: a full Linux needs hardware KVM, which the development
/// machines' emulated /dev/kvm is not (see README, known limits).
fn emit_qemu(demo: &mut Demo) -> Result<()> {
    let vmlinuz = demo.cloud()?.vmlinuz.clone();
    let initrd = demo.initrd.clone().context("no initramfs")?;
    let base = [
        "emit".as_ref(),
        "qemu".as_ref(),
        "--accel".as_ref(),
        "tcg".as_ref(),
        vmlinuz.as_os_str(),
        "--initrd".as_ref(),
        initrd.as_os_str(),
    ];
    anyboot(&base)?;
    let out = cargo()
        .args(["run", "--release", "-q", "--bin", "anyboot", "--"])
        .args(base)
        .args(["--format", "json"])
        .output()
        .context("running anyboot emit")?;
    anyhow::ensure!(out.status.success(), "anyboot emit qemu failed");
    demo.argv = serde_json::from_slice(&out.stdout).context("emit --format json")?;
    Ok(())
}

fn boot(demo: &mut Demo) -> Result<()> {
    let run = anyboot_fixtures::qemu::run_qemu(&demo.argv, std::time::Duration::from_secs(120));
    for line in run.marker_lines(MARKER) {
        println!("guest: {MARKER} {line}");
    }
    anyhow::ensure!(
        run.success() && !run.marker_lines(MARKER).is_empty(),
        "the guest did not reach the marker (status {:?}, timed out {}):\n{}",
        run.status,
        run.timed_out,
        run.output
    );
    println!(
        "QEMU exited 0 after {:.1?}: booted to init and rebooted",
        run.elapsed
    );
    Ok(())
}

/// `anyboot run --time` of the PVH probe guest (`tests/guests/`), with two vCPUs. A full Linux
/// cannot run on the development machines' emulated /dev/kvm (README, known limits); the probe
/// guest checks everything the PVH entry hands it and exits through port 0xf4 (status 33).
fn run_probe(_demo: &mut Demo) -> Result<()> {
    let Some(guest) = anyboot_fixtures::guests::guest_path("pvh32") else {
        println!("skipped: the probe guests were not built (they need cc and ld)");
        return Ok(());
    };
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        println!(
            "skipped: /dev/kvm cannot be opened ({e}); `anyboot run --backend qemu` would use QEMU"
        );
        return Ok(());
    }
    let mut cmd = cargo();
    cmd.args(["run", "--release", "-q", "--bin", "anyboot", "--", "run"])
        .arg(&guest)
        .args([
            "--cpus",
            "2",
            "--mem",
            "64",
            "--cmdline",
            "console=ttyS0 smp",
            "--time",
            "--timeout",
            "30",
        ]);
    println!(
        "$ anyboot run {} --cpus 2 --mem 64 --cmdline 'console=ttyS0 smp' --time",
        guest.display()
    );
    let status = cmd.status().context("running anyboot run")?;
    anyhow::ensure!(
        status.code() == Some(anyboot_fixtures::guests::EXIT_PASS),
        "the probe guest did not pass: {status} (33 = it wrote 0x10 to port 0xf4)"
    );
    println!("exit status 33: the guest wrote 0x10 to the isa-debug-exit port, every check passed");
    Ok(())
}
