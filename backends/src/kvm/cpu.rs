//! vCPU set-up: CPUID, boot MSRs, FPU, local APIC, and the entry registers of
//! [`loader::boot::EntryState`].

use kvm_bindings::{
    CpuId, KVM_MAX_CPUID_ENTRIES, Msrs, kvm_fpu, kvm_lapic_state, kvm_msr_entry, kvm_regs,
    kvm_segment,
};
use kvm_ioctls::{Kvm, VcpuFd};
use loader::boot::{DescriptorTable, EntryState, Segment};

use super::KvmError;

/// Leaf 1 ECX: a hypervisor is present.
const CPUID_1_ECX_HYPERVISOR: u32 = 1 << 31;
/// Leaf 1 EDX: HTT (the logical-processor count in EBX[23:16] is valid).
const CPUID_1_EDX_HTT: u32 = 1 << 28;

/// The CPUID every vCPU gets: KVM_GET_SUPPORTED_CPUID (what this host and KVM can give a
/// guest), with the per-vCPU fields [`cpuid_for`] fills in.
pub fn supported_cpuid(kvm: &Kvm) -> Result<CpuId, KvmError> {
    kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(|e| KvmError::ioctl("KVM_GET_SUPPORTED_CPUID", e))
}

/// A CPUID feature bit the user can hide from the guest (`anyboot run --cpu-disable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feature {
    /// Its name, as Linux's /proc/cpuinfo spells it.
    pub name: &'static str,
    /// Leaf.
    pub leaf: u32,
    /// Subleaf (0 for leaves without one).
    pub subleaf: u32,
    /// Register: 0 = EAX, 1 = EBX, 2 = ECX, 3 = EDX.
    pub reg: u8,
    /// Bit.
    pub bit: u8,
}

/// Features that can be hidden. Chosen for hosts whose KVM emulates guest instructions in
/// software and cannot emulate these (see docs/spikes/kvm-probe-findings.md), and for
/// reproducing a smaller CPU.
pub const FEATURES: &[Feature] = &[
    Feature {
        name: "cx16",
        leaf: 1,
        subleaf: 0,
        reg: 2,
        bit: 13,
    },
    Feature {
        name: "pcid",
        leaf: 1,
        subleaf: 0,
        reg: 2,
        bit: 17,
    },
    Feature {
        name: "x2apic",
        leaf: 1,
        subleaf: 0,
        reg: 2,
        bit: 21,
    },
    Feature {
        name: "tsc_deadline_timer",
        leaf: 1,
        subleaf: 0,
        reg: 2,
        bit: 24,
    },
    Feature {
        name: "xsave",
        leaf: 1,
        subleaf: 0,
        reg: 2,
        bit: 26,
    },
    Feature {
        name: "avx",
        leaf: 1,
        subleaf: 0,
        reg: 2,
        bit: 28,
    },
    Feature {
        name: "rdrand",
        leaf: 1,
        subleaf: 0,
        reg: 2,
        bit: 30,
    },
    Feature {
        name: "avx2",
        leaf: 7,
        subleaf: 0,
        reg: 1,
        bit: 5,
    },
    Feature {
        name: "smep",
        leaf: 7,
        subleaf: 0,
        reg: 1,
        bit: 7,
    },
    Feature {
        name: "rdseed",
        leaf: 7,
        subleaf: 0,
        reg: 1,
        bit: 18,
    },
    Feature {
        name: "smap",
        leaf: 7,
        subleaf: 0,
        reg: 1,
        bit: 20,
    },
    Feature {
        name: "fsgsbase",
        leaf: 7,
        subleaf: 0,
        reg: 1,
        bit: 0,
    },
];

/// Look up a feature by name.
pub fn feature(name: &str) -> Option<Feature> {
    FEATURES.iter().copied().find(|f| f.name == name)
}

/// Hide `features` from the guest.
pub fn disable(cpuid: &mut CpuId, features: &[Feature]) {
    for e in cpuid.as_mut_slice() {
        for f in features {
            if e.function == f.leaf && e.index == f.subleaf {
                let r = match f.reg {
                    0 => &mut e.eax,
                    1 => &mut e.ebx,
                    2 => &mut e.ecx,
                    _ => &mut e.edx,
                };
                *r &= !(1u32 << f.bit);
            }
        }
    }
}

/// Normalise `base` for vCPU `id` of `count`: the initial APIC id in leaf 1 EBX bits 31:24 and
/// the x2APIC id in leaves 0xb and 0x1f EDX must match the vCPU's APIC id (Linux checks them
/// against the MP table), leaf 1 reports `count` logical processors, and the hypervisor bit
/// is set.
pub fn cpuid_for(base: &CpuId, id: u8, count: u8) -> CpuId {
    let mut c = base.clone();
    for e in c.as_mut_slice() {
        match e.function {
            1 => {
                e.ebx = (e.ebx & 0x0000_ffff) | (u32::from(id) << 24) | (u32::from(count) << 16);
                e.ecx |= CPUID_1_ECX_HYPERVISOR;
                if count > 1 {
                    e.edx |= CPUID_1_EDX_HTT;
                }
            }
            0xb | 0x1f => e.edx = u32::from(id),
            _ => {}
        }
    }
    c
}

const MSR_IA32_TSC: u32 = 0x10;
const MSR_IA32_SYSENTER_CS: u32 = 0x174;
const MSR_IA32_SYSENTER_ESP: u32 = 0x175;
const MSR_IA32_SYSENTER_EIP: u32 = 0x176;
const MSR_IA32_MISC_ENABLE: u32 = 0x1a0;
const MSR_MTRR_DEF_TYPE: u32 = 0x2ff;
const MSR_STAR: u32 = 0xc000_0081;
const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_CSTAR: u32 = 0xc000_0083;
const MSR_SYSCALL_MASK: u32 = 0xc000_0084;
const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;
/// IA32_MISC_ENABLE.FAST_STRING.
const MISC_ENABLE_FAST_STRING: u64 = 1;
/// MTRRdefType: MTRRs enabled, default type write-back.
const MTRR_ENABLE_WB: u64 = (1 << 11) | 6;

/// The MSRs a boot CPU starts with: the syscall MSRs cleared, the TSC at 0, fast strings on,
/// and MTRRs enabled with write-back as the default memory type (without it Linux maps all of
/// RAM uncached).
fn boot_msrs() -> Vec<kvm_msr_entry> {
    let e = |index, data| kvm_msr_entry {
        index,
        data,
        ..Default::default()
    };
    vec![
        e(MSR_IA32_SYSENTER_CS, 0),
        e(MSR_IA32_SYSENTER_ESP, 0),
        e(MSR_IA32_SYSENTER_EIP, 0),
        e(MSR_STAR, 0),
        e(MSR_CSTAR, 0),
        e(MSR_KERNEL_GS_BASE, 0),
        e(MSR_SYSCALL_MASK, 0),
        e(MSR_LSTAR, 0),
        e(MSR_IA32_TSC, 0),
        e(MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING),
        e(MSR_MTRR_DEF_TYPE, MTRR_ENABLE_WB),
    ]
}

const APIC_LVT0: usize = 0x350;
const APIC_LVT1: usize = 0x360;
const APIC_DELIVERY_NMI: u32 = 0x4;
const APIC_DELIVERY_EXTINT: u32 = 0x7;

fn lapic_reg(l: &kvm_lapic_state, off: usize) -> u32 {
    let b = |i: usize| l.regs[off + i] as u8;
    u32::from_le_bytes([b(0), b(1), b(2), b(3)])
}

fn set_lapic_reg(l: &mut kvm_lapic_state, off: usize, v: u32) {
    for (i, b) in v.to_le_bytes().into_iter().enumerate() {
        l.regs[off + i] = b as _;
    }
}

/// CPUID, MSRs, FPU and the local APIC's LINT pins (LINT0 = ExtINT so the 8259 reaches the
/// CPU, LINT1 = NMI), as a PC's firmware leaves them. Every vCPU gets this; only the boot vCPU
/// also gets [`set_entry`].
pub fn configure(vcpu: &VcpuFd, cpuid: &CpuId) -> Result<(), KvmError> {
    vcpu.set_cpuid2(cpuid)
        .map_err(|e| KvmError::ioctl("KVM_SET_CPUID2", e))?;
    let entries = boot_msrs();
    let msrs = Msrs::from_entries(&entries)
        .map_err(|e| KvmError::Setup(format!("boot MSR list: {e:?}")))?;
    let n = vcpu
        .set_msrs(&msrs)
        .map_err(|e| KvmError::ioctl("KVM_SET_MSRS", e))?;
    if n != entries.len() {
        // KVM_SET_MSRS stops at the first MSR it rejects.
        let index = entries.get(n).map_or(0, |e| e.index);
        return Err(KvmError::Setup(format!(
            "KVM_SET_MSRS set {n} of {} boot MSRs; it rejected MSR {index:#x}",
            entries.len()
        )));
    }
    let fpu = kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    };
    vcpu.set_fpu(&fpu)
        .map_err(|e| KvmError::ioctl("KVM_SET_FPU", e))?;
    let mut lapic = vcpu
        .get_lapic()
        .map_err(|e| KvmError::ioctl("KVM_GET_LAPIC", e))?;
    let lvt0 = lapic_reg(&lapic, APIC_LVT0);
    let lvt1 = lapic_reg(&lapic, APIC_LVT1);
    set_lapic_reg(
        &mut lapic,
        APIC_LVT0,
        (lvt0 & !0x700) | (APIC_DELIVERY_EXTINT << 8),
    );
    set_lapic_reg(
        &mut lapic,
        APIC_LVT1,
        (lvt1 & !0x700) | (APIC_DELIVERY_NMI << 8),
    );
    vcpu.set_lapic(&lapic)
        .map_err(|e| KvmError::ioctl("KVM_SET_LAPIC", e))
}

fn kvm_seg(s: &Segment) -> kvm_segment {
    kvm_segment {
        base: s.base,
        limit: s.limit,
        selector: s.selector,
        type_: s.type_,
        present: u8::from(s.present),
        dpl: s.dpl,
        db: u8::from(s.db),
        s: u8::from(s.s),
        l: u8::from(s.l),
        g: u8::from(s.g),
        avl: u8::from(s.avl),
        unusable: u8::from(!s.present),
        padding: 0,
    }
}

fn dtable(t: &DescriptorTable) -> kvm_bindings::kvm_dtable {
    kvm_bindings::kvm_dtable {
        base: t.base,
        limit: t.limit,
        ..Default::default()
    }
}

/// Load the entry state into the boot vCPU.
pub fn set_entry(vcpu: &VcpuFd, e: &EntryState) -> Result<(), KvmError> {
    let mut s = vcpu
        .get_sregs()
        .map_err(|e| KvmError::ioctl("KVM_GET_SREGS", e))?;
    s.cs = kvm_seg(&e.cs);
    let ds = kvm_seg(&e.ds);
    s.ds = ds;
    s.es = ds;
    s.fs = ds;
    s.gs = ds;
    s.ss = ds;
    s.tr = kvm_seg(&e.tr);
    s.gdt = dtable(&e.gdt);
    s.idt = dtable(&e.idt);
    s.cr0 = e.cr0;
    s.cr3 = e.cr3;
    s.cr4 = e.cr4;
    s.efer = e.efer;
    vcpu.set_sregs(&s)
        .map_err(|e| KvmError::ioctl("KVM_SET_SREGS", e))?;
    let r = kvm_regs {
        rip: e.rip,
        rsp: e.rsp,
        rbp: 0,
        rax: e.rax,
        rbx: e.rbx,
        rsi: e.rsi,
        rflags: e.rflags,
        ..Default::default()
    };
    vcpu.set_regs(&r)
        .map_err(|e| KvmError::ioctl("KVM_SET_REGS", e))
}

/// RIP, RSP, RFLAGS, the control registers and CS, for failure reports.
pub fn describe(vcpu: &VcpuFd) -> String {
    let regs = vcpu.get_regs();
    let sregs = vcpu.get_sregs();
    match (regs, sregs) {
        (Ok(r), Ok(s)) => format!(
            "rip={:#x} rsp={:#x} rflags={:#x} cr0={:#x} cr3={:#x} cr4={:#x} efer={:#x} cs={:#x}",
            r.rip, r.rsp, r.rflags, s.cr0, s.cr3, s.cr4, s.efer, s.cs.selector
        ),
        (Err(e), _) | (_, Err(e)) => format!("registers unreadable: {e}"),
    }
}
