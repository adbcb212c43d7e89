//! `qemu-system-x86_64 -M microvm` command lines from a boot plan.
//!
//! Hand-written: QEMU's option syntax (comma-separated `key=value` lists where a literal comma is
//! doubled) has no crate, and the choices below are specific to microvm (notes:
//! `hw/i386/microvm.c`, NetBSD's `sys/arch/amd64/conf/MICROVM` usage block).
//!
//! What the command line does:
//! - `-M microvm` with ACPI (virtio-mmio devices as DSDT `LNRO0005` entries: what Debian's
//!   modular `virtio_mmio` needs), or, for the NetBSD profile, MICROVM's own
//!   `x-option-roms=off,rtc=on,acpi=off,pic=off` with modern virtio-mmio (devices announced on
//!   the command line by QEMU's `auto-kernel-cmdline`);
//! - `-accel kvm -cpu host,-arch-capabilities` (nested hosts refuse MSR 0x10a otherwise;
//!   NetBSD gets `+invtsc` as its usage block asks), or `-accel tcg` with
//!   `-icount shift=auto,sleep=off` (without it, Linux's TSC calibration against the PIT hangs
//!   for good on a loaded host: microvm has no HPET or PM timer to fall back on);
//! - `-nodefaults -no-user-config -nographic -serial stdio -no-reboot`, and for Linux
//!   `reboot=t panic=-1` on the kernel command line, so poweroff, reboot and panic all end QEMU;
//! - disks as `virtio-blk-device`s.

use std::path::Path;

use loader::plan::{BootPlan, OsKind, Protocol};

/// Accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// KVM.
    Kvm,
    /// TCG (software emulation).
    Tcg,
}

/// QEMU's isa-debug-exit device on the port and width `anyboot run`'s KVM backend uses
/// (port 0xf4, 4 bytes): a guest write of v ends QEMU with (v << 1) | 1.
pub const DEBUG_EXIT_DEVICE: [&str; 2] = ["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"];

/// Emitter options.
#[derive(Debug, Clone)]
pub struct QemuOptions {
    /// Accelerator.
    pub accel: Accel,
    /// The QEMU binary.
    pub binary: String,
}

impl Default for QemuOptions {
    fn default() -> Self {
        QemuOptions {
            accel: Accel::Kvm,
            binary: "qemu-system-x86_64".into(),
        }
    }
}

/// Why no command line can be emitted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum QemuError {
    /// QEMU cannot boot this plan.
    #[error("QEMU cannot boot this plan: {0}")]
    Unsupported(String),
    /// A path is not valid UTF-8 (QEMU takes its options as text).
    #[error("{0:?}: path is not valid UTF-8")]
    NonUtf8Path(std::path::PathBuf),
    /// A path holds a NUL byte, which no argv word can carry.
    #[error("{0:?}: a path with a NUL byte cannot be passed to QEMU")]
    NulInPath(std::path::PathBuf),
    /// A path is empty (QEMU would read it as "none given").
    #[error("an empty path cannot be passed to QEMU")]
    EmptyPath,
    /// A multiboot module path holds a space: QEMU's multiboot loader takes the file name up
    /// to the first space and the rest as the module's arguments.
    #[error(
        "{0:?}: a multiboot module path with a space cannot be passed to QEMU's -initrd (it splits the file name at the first space)"
    )]
    SpaceInModulePath(std::path::PathBuf),
    /// What anyboot appends to the command line makes it too long.
    #[error(
        "command line with the appended \"{appended}\" is {len} bytes; the kernel accepts at most {limit}"
    )]
    CmdlineTooLong {
        /// What was appended.
        appended: String,
        /// Resulting length.
        len: usize,
        /// The limit.
        limit: u64,
    },
}

/// A value inside a QEMU `key=value,...` option: commas doubled, as QEMU's option parser needs.
pub fn opt_value(s: &str) -> String {
    s.replace(',', ",,")
}

fn path_str(p: &Path) -> Result<&str, QemuError> {
    match p.to_str() {
        None => Err(QemuError::NonUtf8Path(p.to_path_buf())),
        // QEMU reads an empty -kernel, -initrd or file= as "none given".
        Some("") => Err(QemuError::EmptyPath),
        // An argv word cannot hold a NUL.
        Some(s) if s.contains('\0') => Err(QemuError::NulInPath(p.to_path_buf())),
        Some(s) => Ok(s),
    }
}

/// A disk path as QEMU's block layer must see it: a relative path whose first `:` comes before
/// any `/` would be read as a protocol prefix (`nbd:`, `json:{...}`; QEMU's
/// `path_has_protocol`), so it is written as `./PATH`, the same file.
pub fn block_filename(path: &str) -> String {
    if path_has_protocol(path) {
        format!("./{path}")
    } else {
        path.to_owned()
    }
}

/// QEMU's `path_has_protocol` on POSIX hosts: the first of `:` and `/` is a `:`.
pub(crate) fn path_has_protocol(path: &str) -> bool {
    path.find([':', '/'])
        .is_some_and(|i| path.as_bytes()[i] == b':')
}

/// The command line a Linux guest needs so that poweroff, reboot and panic end QEMU
/// (`reboot=t`: triple-fault reboot, turned into an exit by `-no-reboot`; `panic=-1`: reboot at
/// once on panic). Words the user already set are kept.
fn linux_cmdline(plan: &BootPlan) -> Result<String, QemuError> {
    let mut cmd = plan.cmdline.clone();
    let mut appended = Vec::new();
    let has = |w: &str| plan.cmdline.split_whitespace().any(|x| x.starts_with(w));
    if !has("reboot=") {
        appended.push("reboot=t");
    }
    if !has("panic=") {
        appended.push("panic=-1");
    }
    for a in &appended {
        if !cmd.is_empty() {
            cmd.push(' ');
        }
        cmd.push_str(a);
    }
    if cmd.len() as u64 > plan.os.cmdline_limit {
        return Err(QemuError::CmdlineTooLong {
            appended: appended.join(" "),
            len: cmd.len(),
            limit: plan.os.cmdline_limit,
        });
    }
    Ok(cmd)
}

/// The argv (program first).
pub fn argv(plan: &BootPlan, opts: &QemuOptions) -> Result<Vec<String>, QemuError> {
    if plan.protocol == Protocol::Linux64 && plan.format == loader::inspect::Format::Elf {
        return Err(QemuError::Unsupported(
            "QEMU loads an ELF kernel only through its PVH note (\"Error loading uncompressed kernel without PVH ELF Note\"); this vmlinux has none".into(),
        ));
    }
    let netbsd = plan.os.kind == OsKind::Netbsd;
    let mut a: Vec<String> = vec![opts.binary.clone()];
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| (*s).to_owned()));
    let machine = if netbsd {
        "microvm,x-option-roms=off,rtc=on,acpi=off,pic=off"
    } else {
        "microvm"
    };
    push(&["-M", machine]);
    match opts.accel {
        Accel::Kvm => push(&[
            "-accel",
            "kvm",
            "-cpu",
            if netbsd {
                "host,+invtsc,-arch-capabilities"
            } else {
                "host,-arch-capabilities"
            },
        ]),
        Accel::Tcg => push(&["-accel", "tcg", "-icount", "shift=auto,sleep=off"]),
    }
    let mem = format!("{}M", plan.memory.size_mib);
    let smp = plan.cpus.to_string();
    push(&["-m", &mem, "-smp", &smp]);
    push(&[
        "-nodefaults",
        "-no-user-config",
        "-nographic",
        "-serial",
        "stdio",
        "-no-reboot",
    ]);
    let kernel = path_str(&plan.boot_image)?.to_owned();
    push(&["-kernel", &kernel]);
    if let Some(m) = plan.modules.first() {
        // QEMU's -initrd is itself a comma-separated list for multiboot: double the commas.
        let initrd = if plan.protocol == Protocol::Multiboot {
            let p = path_str(&m.path)?;
            if p.contains(' ') {
                return Err(QemuError::SpaceInModulePath(m.path.clone()));
            }
            opt_value(p)
        } else {
            path_str(&m.path)?.to_owned()
        };
        push(&["-initrd", &initrd]);
    }
    let cmdline = if plan.os.kind == OsKind::Linux {
        linux_cmdline(plan)?
    } else {
        plan.cmdline.clone()
    };
    if !cmdline.is_empty() {
        push(&["-append", &cmdline]);
    }
    for (i, d) in plan.disks.iter().enumerate() {
        let drive = format!(
            "id=d{i},file={},format=raw,if=none{}",
            opt_value(&block_filename(path_str(&d.path)?)),
            if d.read_only { ",readonly=on" } else { "" }
        );
        let dev = format!("virtio-blk-device,drive=d{i}");
        push(&["-drive", &drive, "-device", &dev]);
    }
    if plan.os.modern_virtio_mmio {
        push(&["-global", "virtio-mmio.force-legacy=false"]);
    }
    Ok(a)
}

/// The argv as one POSIX shell line: words made only of safe characters stay bare, all others
/// are single-quoted with `'` written as `'\''`.
pub fn shell_line(argv: &[String]) -> String {
    argv.iter()
        .map(|w| {
            let safe = !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
            if safe {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether KVM can be used here: `/dev/kvm` opens for reading and writing.
pub fn kvm_available() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

/// End a running QEMU: SIGTERM first, so that it restores the terminal it put in raw mode
/// (`-serial stdio`), then SIGKILL if it has not ended within `grace`; reaps it.
pub fn terminate(child: &mut std::process::Child, grace: std::time::Duration) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) on our own child's pid, which has not been reaped yet (so it cannot
        // have been reused).
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let give_up = std::time::Instant::now() + grace;
    while std::time::Instant::now() < give_up {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting() {
        let argv: Vec<String> = ["qemu", "-append", "a b 'c' $HOME", "plain-word,x=1"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(
            shell_line(&argv),
            r"qemu -append 'a b '\''c'\'' $HOME' plain-word,x=1"
        );
    }

    #[test]
    fn commas_doubled() {
        assert_eq!(opt_value("/a,b,,c"), "/a,,b,,,,c");
    }
}
