//! Backends that consume an anyboot boot plan.
//!
//! Modules:
//! - [`kvm`]: launch a plan directly under KVM (Linux x86_64 only);
//! - [`qemu`]: emit a `qemu-system-x86_64 -M microvm` command line;
//! - [`extract`]: write the inner vmlinux of a bzImage for PVH boots;
//! - [`xl`]: emit a Xen `xl.cfg`;
//! - [`firecracker`]: emit a Firecracker `--config-file` JSON;
//! - [`cloud_hypervisor`]: emit a Cloud Hypervisor command line;
//! - [`readback`]: parse what the emitters write back, by each consumer's rules.
//!
//! Parsing and planning live in `loader` and are pure; every effect (files, processes, KVM)
//! lives here.
#![deny(missing_docs)]

pub mod cloud_hypervisor;
pub mod extract;
pub mod firecracker;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub mod kvm;
pub mod qemu;
pub mod readback;
pub mod xl;

/// The backends anyboot knows, in the order `anyboot check` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// anyboot's own KVM launcher.
    Kvm,
    /// QEMU's microvm machine.
    Qemu,
    /// Xen's `xl` toolstack.
    Xl,
    /// Firecracker.
    Firecracker,
    /// Cloud Hypervisor.
    CloudHypervisor,
}

impl BackendKind {
    /// Every backend, in report order.
    pub const ALL: [BackendKind; 5] = [
        BackendKind::Kvm,
        BackendKind::Qemu,
        BackendKind::Xl,
        BackendKind::Firecracker,
        BackendKind::CloudHypervisor,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Kvm => "kvm",
            BackendKind::Qemu => "qemu",
            BackendKind::Xl => "xl",
            BackendKind::Firecracker => "firecracker",
            BackendKind::CloudHypervisor => "cloud-hypervisor",
        }
    }
}
