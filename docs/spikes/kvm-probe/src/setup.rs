//! Q4: the VM/vCPU set-up a real Linux guest needs, one ioctl at a time, each logged.

use kvm_bindings::{
    kvm_fpu, kvm_lapic_state, kvm_msr_entry, kvm_pit_config, Msrs, KVM_MAX_CPUID_ENTRIES,
    KVM_PIT_SPEAKER_DUMMY,
};
use kvm_ioctls::{Cap, VcpuFd};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use crate::machine::Machine;
use crate::util::{kerr, mono_ns};

pub const TSS_ADDR: usize = 0xfffb_d000;
pub const IDENTITY_MAP_ADDR: u64 = 0xfffb_c000;
pub const SERIAL_GSI: u32 = 4;

/// Collects "step -> OK/FAILED" lines; prints as it goes when `verbose`.
/// Each line also records the time since the previous `rec` (≈ the step's cost).
pub struct StepLog {
    pub verbose: bool,
    pub lines: Vec<(String, bool, String)>,
    last: u64,
}

impl StepLog {
    pub fn new(verbose: bool) -> Self {
        Self { verbose, lines: Vec::new(), last: mono_ns() }
    }
    pub fn rec(&mut self, step: &str, r: Result<String, String>) -> bool {
        let ok = r.is_ok();
        let detail = r.unwrap_or_else(|e| e);
        let now = mono_ns();
        let us = (now - self.last) as f64 / 1e3;
        self.last = now;
        if self.verbose {
            println!("  [{}] {step}: {detail}  ({us:.0} us)", if ok { "OK  " } else { "FAIL" });
        }
        self.lines.push((step.to_string(), ok, detail));
        ok
    }
}

pub fn report_caps(m: &Machine, log: &mut StepLog) {
    let caps = [
        ("Irqchip", Cap::Irqchip),
        ("Pit2", Cap::Pit2),
        ("Irqfd", Cap::Irqfd),
        ("SetTssAddr", Cap::SetTssAddr),
        ("SetIdentityMapAddr", Cap::SetIdentityMapAddr),
        ("ImmediateExit", Cap::ImmediateExit),
        ("TscControl", Cap::TscControl),
        ("GetTscKhz", Cap::GetTscKhz),
        ("TscDeadlineTimer", Cap::TscDeadlineTimer),
        ("Xsave", Cap::Xsave),
        ("Xcrs", Cap::Xcrs),
        ("SplitIrqchip", Cap::SplitIrqchip),
        ("X2ApicApi", Cap::X2ApicApi),
        ("ExtCpuid", Cap::ExtCpuid),
        ("AdjustClock", Cap::AdjustClock),
    ];
    let s: Vec<String> = caps
        .iter()
        .map(|(n, c)| format!("{n}={}", m.kvm.check_extension_int(*c)))
        .collect();
    log.rec(
        "KVM_CHECK_EXTENSION",
        Ok(format!(
            "{} max_vcpus={} nr_vcpus={} nr_memslots={} api={}",
            s.join(" "),
            m.kvm.get_max_vcpus(),
            m.kvm.get_nr_vcpus(),
            m.kvm.get_nr_memslots(),
            m.kvm.get_api_version()
        )),
    );
}

/// VM-level steps, in the order a production backend should do them (before vCPUs exist).
/// Returns the serial EventFd if KVM_IRQFD registration worked.
pub fn vm_setup(m: &Machine, log: &mut StepLog) -> Option<EventFd> {
    // Memory first: registering memslots AFTER KVM_CREATE_IRQCHIP costs ~6-8 ms on this host
    // (vs ~0.1-1.3 ms before it); see the `order` probe.
    log.rec(
        "set_user_memory_region (256 MiB @ 0)",
        m.register_memory().map(|_| "ok".into()),
    );
    log.rec(
        "set_tss_address(0xfffbd000)",
        m.vm.set_tss_address(TSS_ADDR).map(|_| "ok".into()).map_err(|e| kerr(&e)),
    );
    log.rec(
        "set_identity_map_address(0xfffbc000)",
        m.vm
            .set_identity_map_address(IDENTITY_MAP_ADDR)
            .map(|_| "ok".into())
            .map_err(|e| kerr(&e)),
    );
    let irqchip = log.rec(
        "create_irq_chip (KVM_CREATE_IRQCHIP)",
        m.vm.create_irq_chip().map(|_| "ok".into()).map_err(|e| kerr(&e)),
    );
    let pit = kvm_pit_config { flags: KVM_PIT_SPEAKER_DUMMY, ..Default::default() };
    log.rec(
        "create_pit2(KVM_PIT_SPEAKER_DUMMY)",
        m.vm.create_pit2(pit).map(|_| "ok".into()).map_err(|e| kerr(&e)),
    );
    let evt = match EventFd::new(EFD_NONBLOCK) {
        Ok(e) => e,
        Err(e) => {
            log.rec("EventFd::new", Err(e.to_string()));
            return None;
        }
    };
    let ok = log.rec(
        "register_irqfd(EventFd, gsi 4)",
        m.vm
            .register_irqfd(&evt, SERIAL_GSI)
            .map(|_| format!("ok (irqchip created: {irqchip})"))
            .map_err(|e| kerr(&e)),
    );
    ok.then_some(evt)
}

pub const MSR_IA32_TSC: u32 = 0x10;
pub const MSR_IA32_SYSENTER_CS: u32 = 0x174;
pub const MSR_IA32_SYSENTER_ESP: u32 = 0x175;
pub const MSR_IA32_SYSENTER_EIP: u32 = 0x176;
pub const MSR_IA32_MISC_ENABLE: u32 = 0x1a0;
pub const MSR_MTRR_DEF_TYPE: u32 = 0x2ff;
pub const MSR_STAR: u32 = 0xc000_0081;
pub const MSR_LSTAR: u32 = 0xc000_0082;
pub const MSR_CSTAR: u32 = 0xc000_0083;
pub const MSR_SYSCALL_MASK: u32 = 0xc000_0084;
pub const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;

pub fn boot_msrs() -> Vec<kvm_msr_entry> {
    let e = |index, data| kvm_msr_entry { index, data, ..Default::default() };
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
        e(MSR_IA32_MISC_ENABLE, 1), // FAST_STRING
        e(MSR_MTRR_DEF_TYPE, (1 << 11) | 6), // MTRRs enabled, default WB
    ]
}

fn lapic_reg(l: &kvm_lapic_state, off: usize) -> u32 {
    let b: Vec<u8> = l.regs[off..off + 4].iter().map(|&c| c as u8).collect();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn set_lapic_reg(l: &mut kvm_lapic_state, off: usize, v: u32) {
    for (i, b) in v.to_le_bytes().iter().enumerate() {
        l.regs[off + i] = *b as _;
    }
}

const APIC_LVT0: usize = 0x350;
const APIC_LVT1: usize = 0x360;
const APIC_MODE_NMI: u32 = 0x4;
const APIC_MODE_EXTINT: u32 = 0x7;

/// vCPU-level steps (CPUID, MSRs, FPU, LAPIC, TSC). Order follows Firecracker.
pub fn vcpu_setup(m: &Machine, vcpu: &VcpuFd, id: u8, log: &mut StepLog) {
    // CPUID
    match m.kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES) {
        Ok(mut cpuid) => {
            let n = cpuid.as_slice().len();
            let mut leaf1 = String::new();
            for e in cpuid.as_mut_slice().iter_mut() {
                if e.function == 1 {
                    // Initial APIC id in EBX[31:24] must match the vCPU id.
                    e.ebx = (e.ebx & 0x00ff_ffff) | ((id as u32) << 24);
                    leaf1 = format!(
                        "leaf1 ecx={:#010x} edx={:#010x} (cx16={} xsave={} x2apic={} hypervisor={} tsc_deadline={})",
                        e.ecx,
                        e.edx,
                        (e.ecx >> 13) & 1,
                        (e.ecx >> 26) & 1,
                        (e.ecx >> 21) & 1,
                        (e.ecx >> 31) & 1,
                        (e.ecx >> 24) & 1
                    );
                }
            }
            log.rec(
                "get_supported_cpuid(KVM_MAX_CPUID_ENTRIES=80)",
                Ok(format!("{n} entries; {leaf1}")),
            );
            log.rec(
                "set_cpuid2",
                vcpu.set_cpuid2(&cpuid).map(|_| "ok".into()).map_err(|e| kerr(&e)),
            );
        }
        Err(e) => {
            log.rec("get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)", Err(kerr(&e)));
        }
    }

    // MSRs: KVM_SET_MSRS returns how many it set; it stops at the first one it rejects.
    let entries = boot_msrs();
    let msrs = Msrs::from_entries(&entries).expect("Msrs::from_entries");
    match vcpu.set_msrs(&msrs) {
        Ok(n) if n == entries.len() => {
            log.rec("set_msrs(11 boot MSRs)", Ok(format!("all {n} set")));
        }
        Ok(n) => {
            log.rec(
                "set_msrs(11 boot MSRs)",
                Err(format!(
                    "only {n}/{} set; first rejected index {:#x}",
                    entries.len(),
                    entries[n].index
                )),
            );
            for e in &entries[n..] {
                let one = Msrs::from_entries(&[*e]).unwrap();
                let r = vcpu.set_msrs(&one);
                log.rec(
                    &format!("  set_msrs([{:#x}]) alone", e.index),
                    match r {
                        Ok(1) => Ok("ok".into()),
                        Ok(k) => Err(format!("returned {k}")),
                        Err(err) => Err(kerr(&err)),
                    },
                );
            }
        }
        Err(e) => {
            log.rec("set_msrs(11 boot MSRs)", Err(kerr(&e)));
        }
    }

    // FPU
    // KVM_PROBE_FCW / KVM_PROBE_MXCSR (hex) override the values, to tell them from reset defaults.
    let env_hex = |k: &str, d| {
        std::env::var(k).ok().and_then(|v| u32::from_str_radix(v.trim_start_matches("0x"), 16).ok()).unwrap_or(d)
    };
    let (fcw, mxcsr) = (env_hex("KVM_PROBE_FCW", 0x37f) as u16, env_hex("KVM_PROBE_MXCSR", 0x1f80));
    let fpu = kvm_fpu { fcw, mxcsr, ..Default::default() };
    log.rec(
        &format!("set_fpu(fcw={fcw:#x} mxcsr={mxcsr:#x})"),
        vcpu.set_fpu(&fpu).map(|_| "ok".into()).map_err(|e| kerr(&e)),
    );

    // LAPIC: LINT0 = ExtINT, LINT1 = NMI (needs the in-kernel irqchip).
    match vcpu.get_lapic() {
        Ok(mut l) => {
            let (lvt0, lvt1) = (lapic_reg(&l, APIC_LVT0), lapic_reg(&l, APIC_LVT1));
            set_lapic_reg(&mut l, APIC_LVT0, (lvt0 & !0x700) | (APIC_MODE_EXTINT << 8));
            set_lapic_reg(&mut l, APIC_LVT1, (lvt1 & !0x700) | (APIC_MODE_NMI << 8));
            log.rec(
                "get_lapic + set_lapic(LINT0 ExtINT, LINT1 NMI)",
                vcpu.set_lapic(&l)
                    .map(|_| format!("ok (was LVT0={lvt0:#x} LVT1={lvt1:#x}; APIC ID reg={:#x})", lapic_reg(&l, 0x20)))
                    .map_err(|e| kerr(&e)),
            );
        }
        Err(e) => {
            log.rec("get_lapic", Err(kerr(&e)));
        }
    }

    // TSC frequency
    match vcpu.get_tsc_khz() {
        Ok(khz) => {
            log.rec("get_tsc_khz", Ok(format!("{khz} kHz")));
            log.rec(
                &format!("set_tsc_khz({khz}) (same value)"),
                vcpu.set_tsc_khz(khz).map(|_| "ok".into()).map_err(|e| kerr(&e)),
            );
            let other = khz / 2;
            let r = vcpu.set_tsc_khz(other);
            let after = vcpu.get_tsc_khz().map(|k| k.to_string()).unwrap_or_else(|e| kerr(&e));
            log.rec(
                &format!("set_tsc_khz({other}) (scaling)"),
                r.map(|_| format!("ok; get_tsc_khz now {after}")).map_err(|e| kerr(&e)),
            );
            let _ = vcpu.set_tsc_khz(khz);
        }
        Err(e) => {
            log.rec("get_tsc_khz", Err(kerr(&e)));
        }
    }
}
