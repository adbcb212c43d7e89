//! Firecracker `--config-file` JSON from a boot plan.
//!
//! Hand-written against Firecracker's documented schema (`src/vmm/src/resources.rs` and
//! `vmm_config/*.rs`, v1.12–v1.16): top-level keys kebab-case, inner keys snake_case, unknown
//! fields rejected, so anyboot writes nothing else. Version facts:
//! - an ELF vmlinux boots at `e_entry` (64-bit, with a zero page) in every release;
//! - an ELF with XEN_ELFNOTE_PHYS32_ENTRY boots by PVH since v1.12.0;
//! - a bzImage is not loaded by any release up to v1.16.1: a bzImage whose inner vmlinux is
//!   PVH-capable boots after extraction;
//! - the serial console needs `console=ttyS0` in `boot_args` (Firecracker's default arguments
//!   disable it with `8250.nr_uarts=0`).

use loader::plan::{BootPlan, OsKind, Protocol};
use serde_json::{Value, json};

/// Why no config can be emitted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FirecrackerError {
    /// Firecracker cannot boot this plan.
    #[error("Firecracker cannot boot this plan: {0}")]
    Unsupported(String),
    /// A path is not valid UTF-8 (JSON strings are Unicode).
    #[error("{0:?}: path is not valid UTF-8")]
    NonUtf8Path(std::path::PathBuf),
    /// A path is empty or holds a NUL byte: Firecracker could not open it.
    #[error("{0:?}: an empty path or one with a NUL byte cannot be opened by Firecracker")]
    BadPath(std::path::PathBuf),
}

/// The config and the version facts that apply to it.
#[derive(Debug, Clone, PartialEq)]
pub struct FirecrackerConfig {
    /// The `--config-file` document.
    pub config: Value,
    /// Facts the user must know (minimum version, console), one sentence each.
    pub notes: Vec<String>,
}

fn path(p: &std::path::Path) -> Result<&str, FirecrackerError> {
    match p.to_str() {
        None => Err(FirecrackerError::NonUtf8Path(p.to_path_buf())),
        // Firecracker opens the path with std::fs, which refuses a NUL.
        Some(s) if s.is_empty() || s.contains('\0') => {
            Err(FirecrackerError::BadPath(p.to_path_buf()))
        }
        Some(s) => Ok(s),
    }
}

/// The config for `plan` (plan PVH from an extracted vmlinux for a PVH-capable bzImage).
pub fn config(plan: &BootPlan) -> Result<FirecrackerConfig, FirecrackerError> {
    let mut notes = Vec::new();
    match (plan.protocol, plan.format) {
        (Protocol::Pvh, _) => notes.push(
            "PVH boot needs Firecracker v1.12.0 or later (older releases enter the ELF at e_entry)"
                .to_owned(),
        ),
        (Protocol::Linux64, loader::inspect::Format::Elf) => notes.push(
            "the vmlinux is entered at e_entry in 64-bit mode with a zero page (every release)"
                .to_owned(),
        ),
        (_, loader::inspect::Format::Bzimage) => {
            return Err(FirecrackerError::Unsupported(
                "no release up to v1.16.1 loads a bzImage; if its inner vmlinux has a PVH note, use --protocol pvh (anyboot extracts it)".into(),
            ));
        }
        (p, f) => {
            return Err(FirecrackerError::Unsupported(format!(
                "Firecracker boots ELF vmlinux files (e_entry or PVH), not a {} by {}",
                f.name(),
                p.name()
            )));
        }
    }
    if plan.cpus > 32 {
        return Err(FirecrackerError::Unsupported(format!(
            "vcpu_count {} is over Firecracker's 32",
            plan.cpus
        )));
    }
    let mut boot_args = plan.cmdline.clone();
    if plan.os.kind == OsKind::Linux
        && !boot_args
            .split_whitespace()
            .any(|w| w.starts_with("console="))
    {
        notes.push(
            "no console= in boot_args: the guest's serial console stays silent (add console=ttyS0)"
                .into(),
        );
    }
    if plan.os.kind == OsKind::Linux
        && !boot_args
            .split_whitespace()
            .any(|w| w.starts_with("reboot="))
    {
        // reboot=k makes a guest reboot end Firecracker through the i8042.
        if !boot_args.is_empty() {
            boot_args.push(' ');
        }
        boot_args.push_str("reboot=k");
    }
    let mut boot_source = json!({
        "kernel_image_path": path(&plan.boot_image)?,
        "boot_args": boot_args,
    });
    if let Some(m) = plan.modules.first() {
        boot_source["initrd_path"] = json!(path(&m.path)?);
    }
    let drives = plan
        .disks
        .iter()
        .enumerate()
        .map(|(i, d)| {
            Ok(json!({
                "drive_id": format!("disk{i}"),
                "path_on_host": path(&d.path)?,
                "is_root_device": false,
                "is_read_only": d.read_only,
            }))
        })
        .collect::<Result<Vec<_>, FirecrackerError>>()?;
    Ok(FirecrackerConfig {
        config: json!({
            "boot-source": boot_source,
            "drives": drives,
            "machine-config": {
                "vcpu_count": plan.cpus,
                "mem_size_mib": plan.memory.size_mib,
                "smt": false,
            },
        }),
        notes,
    })
}
