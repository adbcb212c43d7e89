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
    /// A path Cloud Hypervisor's option parser cannot take (a comma splits its options).
    #[error("{0}: a disk path with a comma or a non-UTF-8 path cannot be passed to --disk")]
    BadPath(std::path::PathBuf),
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
            .map(str::to_owned)
            .ok_or_else(|| CloudHypervisorError::BadPath(p.to_path_buf()))
    };
    let mut a = vec![
        "cloud-hypervisor".to_owned(),
        "--kernel".into(),
        s(&plan.boot_image)?,
    ];
    if !plan.cmdline.is_empty() {
        a.extend(["--cmdline".into(), plan.cmdline.clone()]);
    }
    if let Some(m) = plan.modules.first() {
        a.extend(["--initramfs".into(), s(&m.path)?]);
    }
    for d in &plan.disks {
        let p = s(&d.path)?;
        if p.contains(',') {
            return Err(CloudHypervisorError::BadPath(d.path.clone()));
        }
        let ro = if d.read_only { ",readonly=on" } else { "" };
        a.extend(["--disk".into(), format!("path={p}{ro}")]);
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
