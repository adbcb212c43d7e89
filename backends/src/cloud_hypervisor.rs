//! Cloud Hypervisor command lines from a boot plan.
//!
//! Hand-written against Cloud Hypervisor's documented flags (`cloud-hypervisor/src/main.rs`,
//! `vmm/src/config.rs`, v39+): `--kernel --cmdline --initramfs --disk path=...[,readonly=on]
//! --serial tty --console off --memory size=... --cpus boot=...`. Version facts: an ELF must
//! carry the PVH note (plain ELF boot was removed around v16); bzImages load since v39 through
//! the 32-bit entry. Devices are virtio-PCI, so the guest needs `CONFIG_VIRTIO_PCI`.

use loader::inspect::Format;
use loader::plan::{BootPlan, Protocol};

/// Why no command line can be emitted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloudHypervisorError {
    /// Cloud Hypervisor cannot boot this plan.
    #[error("Cloud Hypervisor cannot boot this plan: {0}")]
    Unsupported(String),
    /// A path that is not UTF-8, is empty or holds a NUL (no argv word can).
    #[error(
        "{0:?}: an empty or non-UTF-8 path, or one with a NUL, cannot be passed to Cloud Hypervisor"
    )]
    BadPath(std::path::PathBuf),
    /// A disk path Cloud Hypervisor's option parser would change: it removes every `"`,
    /// counts `[` and `]` as brackets and trims blanks at both ends.
    #[error(
        "{0:?}: a disk path with '\"', '[', ']' or blanks at either end cannot be passed to --disk (Cloud Hypervisor's option parser removes or splits on them)"
    )]
    DiskPath(std::path::PathBuf),
}

/// The argv (program first) and the version facts that apply.
pub fn argv(plan: &BootPlan) -> Result<(Vec<String>, Vec<String>), CloudHypervisorError> {
    let mut notes = Vec::new();
    match (plan.protocol, plan.format) {
        (Protocol::Pvh, _) => notes.push("PVH boot: Cloud Hypervisor v0.6 or later".to_owned()),
        (Protocol::Linux64 | Protocol::Linux32, Format::Bzimage) => {
            notes.push("bzImage boot (32-bit entry) needs Cloud Hypervisor v39 or later".to_owned())
        }
        (p, f) => {
            return Err(CloudHypervisorError::Unsupported(format!(
                "it needs an ELF with a PVH note or a bzImage, not a {} by {}",
                f.name(),
                p.name()
            )));
        }
    }
    notes.push("devices are virtio-PCI: the guest needs CONFIG_VIRTIO_PCI".to_owned());
    let s = |p: &std::path::Path| {
        p.to_str()
            .filter(|s| !s.is_empty() && !s.contains('\0'))
            .map(str::to_owned)
            .ok_or_else(|| CloudHypervisorError::BadPath(p.to_path_buf()))
    };
    let mut a = vec!["cloud-hypervisor".to_owned()];
    // Cloud Hypervisor's clap would take a separate value starting with '-' for a flag: such
    // values are attached with '='.
    let mut flag = |name: &str, value: String| {
        if value.starts_with('-') {
            a.push(format!("{name}={value}"));
        } else {
            a.extend([name.to_owned(), value]);
        }
    };
    flag("--kernel", s(&plan.boot_image)?);
    if !plan.cmdline.is_empty() {
        flag("--cmdline", plan.cmdline.clone());
    }
    if let Some(m) = plan.modules.first() {
        flag("--initramfs", s(&m.path)?);
    }
    for d in &plan.disks {
        let p = s(&d.path)?;
        if p.contains(['"', '[', ']']) || p.trim() != p {
            return Err(CloudHypervisorError::DiskPath(d.path.clone()));
        }
        // Inside quotes a comma does not split the option.
        let p = if p.contains(',') {
            format!("\"{p}\"")
        } else {
            p
        };
        let ro = if d.read_only { ",readonly=on" } else { "" };
        flag("--disk", format!("path={p}{ro}"));
    }
    a.extend([
        "--serial".into(),
        "tty".into(),
        "--console".into(),
        "off".into(),
        "--memory".into(),
        format!("size={}M", plan.memory.size_mib),
        "--cpus".into(),
        format!("boot={}", plan.cpus),
    ]);
    Ok((a, notes))
}
