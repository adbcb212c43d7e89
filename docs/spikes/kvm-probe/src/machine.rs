//! VM + guest-memory construction and CPU-mode set-up (register state for each boot protocol).

use kvm_bindings::{kvm_regs, kvm_segment, kvm_userspace_memory_region};
use kvm_ioctls::{Kvm, VcpuFd, VmFd};
use vm_memory::{
    Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
};

use crate::util::{mono_ns, Res};

pub const MEM_SIZE: usize = 256 << 20;
pub const LOAD_ADDR: u64 = 0x10_0000;
pub const GDT_ADDR: u64 = 0x500;
pub const SELECT_ADDR: u64 = 0x5000; // u32 test selector read by some guests
pub const MB_INFO: u64 = 0x5800;
pub const PVH_INFO: u64 = 0x6000;
pub const BOOT_PARAMS: u64 = 0x7000;
pub const PML4: u64 = 0x9000;
pub const PDPT: u64 = 0xa000;
pub const PD: u64 = 0xb000;

pub const CR0_PE: u64 = 1;
pub const CR0_ET: u64 = 1 << 4;
pub const CR0_PG: u64 = 1 << 31;
pub const CR4_PAE: u64 = 1 << 5;
pub const EFER_LME: u64 = 1 << 8;
pub const EFER_LMA: u64 = 1 << 10;

/// GDT entries exactly as requested for the PVH/multiboot probes.
pub const GDT32: [u64; 4] = [
    0,
    0x00cf_9b00_0000_ffff, // 0x08: code, 32-bit, 4 GiB, base 0
    0x00cf_9300_0000_ffff, // 0x10: data, 4 GiB, base 0
    0x0000_8b00_0000_0067, // 0x18: 32-bit busy TSS, base 0, limit 0x67
];

/// Linux boot protocol wants __BOOT_CS = 0x10 and __BOOT_DS = 0x18.
pub const GDT64: [u64; 6] = [
    0,
    0,
    0x00af_9b00_0000_ffff, // 0x10: code, L=1
    0x00cf_9300_0000_ffff, // 0x18: data
    0x0000_8b00_0000_0067, // 0x20: 64-bit busy TSS (16-byte descriptor, low half)
    0,                     //       high half (base[63:32] = 0)
];

/// How the 32-bit segment state is established.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Segment caches set through KVM_SET_SREGS only; GDTR = {base 0, limit 0}.
    Pm32SregsOnly,
    /// Same caches, plus a real GDT at 0x500 (GDTR points at it).
    Pm32Gdt,
    /// 64-bit long mode, identity-mapped first 1 GiB via 2 MiB pages.
    Long64,
}

pub struct Machine {
    pub kvm: Kvm,
    // Field order matters for drop: the VM fd must go before the memory it maps.
    pub vm: VmFd,
    pub mem: GuestMemoryMmap,
    /// CLOCK_MONOTONIC ns right after KVM_CREATE_VM returned.
    pub t_vm_created: u64,
}

impl Machine {
    pub fn new(mem_size: usize) -> Res<Self> {
        let kvm = Kvm::new().map_err(|e| format!("open /dev/kvm: {e}"))?;
        let vm = kvm.create_vm().map_err(|e| format!("KVM_CREATE_VM: {e}"))?;
        let t_vm_created = mono_ns();
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), mem_size)])
            .map_err(|e| format!("guest memory mmap: {e}"))?;
        Ok(Self { kvm, vm, mem, t_vm_created })
    }

    /// KVM_SET_USER_MEMORY_REGION for every region. Separate from `new()` so the
    /// step-by-step set-up probe can order it relative to TSS/irqchip calls.
    pub fn register_memory(&self) -> Res<()> {
        for (slot, region) in self.mem.iter().enumerate() {
            let r = kvm_userspace_memory_region {
                slot: slot as u32,
                flags: 0,
                guest_phys_addr: region.start_addr().raw_value(),
                memory_size: region.len(),
                userspace_addr: region.as_ptr() as u64,
            };
            // SAFETY: `userspace_addr`/`memory_size` describe a live anonymous mapping owned by
            // `self.mem`; `Machine` drops `vm` before `mem`, and every probe drops its VcpuFds
            // before the `Machine` (an open vCPU fd keeps the kernel VM, and thus the memslot,
            // alive), so the mapping outlives every user of the memslot.
            unsafe { self.vm.set_user_memory_region(r) }
                .map_err(|e| format!("KVM_SET_USER_MEMORY_REGION: {e}"))?;
        }
        Ok(())
    }

    pub fn write(&self, addr: u64, data: &[u8]) -> Res<()> {
        self.mem
            .write_slice(data, GuestAddress(addr))
            .map_err(|e| format!("guest write at {addr:#x}: {e}"))
    }

    pub fn write_u32(&self, addr: u64, v: u32) -> Res<()> {
        self.write(addr, &v.to_le_bytes())
    }

    pub fn write_u64s(&self, addr: u64, v: &[u64]) -> Res<()> {
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.write(addr, &bytes)
    }

    pub fn read_u32(&self, addr: u64) -> Res<u32> {
        self.mem
            .read_obj::<u32>(GuestAddress(addr))
            .map_err(|e| format!("guest read at {addr:#x}: {e}"))
    }

    /// Identity map 0..1 GiB: PML4[0] -> PDPT[0] -> PD with 512 x 2 MiB pages (0x83).
    pub fn write_identity_page_tables(&self) -> Res<()> {
        self.write_u64s(PML4, &[PDPT | 3])?;
        self.write_u64s(PDPT, &[PD | 3])?;
        let pd: Vec<u64> = (0..512u64).map(|i| (i << 21) | 0x83).collect();
        self.write_u64s(PD, &pd)
    }
}

pub fn seg(selector: u16, type_: u8, s: u8, l: u8, db: u8, g: u8, limit: u32) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit,
        selector,
        type_,
        present: 1,
        dpl: 0,
        db,
        s,
        l,
        g,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

/// Establish the entry CPU mode on `vcpu` (sregs + any in-memory tables it needs).
/// The IDTR is left as KVM reset it (we never load an IDT for the guest).
pub fn setup_mode(m: &Machine, vcpu: &VcpuFd, mode: Mode) -> Res<()> {
    let mut s = vcpu.get_sregs().map_err(|e| format!("KVM_GET_SREGS: {e}"))?;
    match mode {
        Mode::Pm32SregsOnly | Mode::Pm32Gdt => {
            let code = seg(0x08, 0xb, 1, 0, 1, 1, 0xffff_ffff);
            let data = seg(0x10, 0x3, 1, 0, 1, 1, 0xffff_ffff);
            s.cs = code;
            s.ds = data;
            s.es = data;
            s.fs = data;
            s.gs = data;
            s.ss = data;
            s.tr = seg(0x18, 0xb, 0, 0, 0, 0, 0x67);
            if mode == Mode::Pm32Gdt {
                m.write_u64s(GDT_ADDR, &GDT32)?;
                s.gdt.base = GDT_ADDR;
                s.gdt.limit = (GDT32.len() * 8 - 1) as u16;
            } else {
                s.gdt.base = 0;
                s.gdt.limit = 0;
            }
            s.cr0 = CR0_PE | CR0_ET;
            s.cr3 = 0;
            s.cr4 = 0;
            s.efer = 0;
        }
        Mode::Long64 => {
            m.write_identity_page_tables()?;
            m.write_u64s(GDT_ADDR, &GDT64)?;
            let code = seg(0x10, 0xb, 1, 1, 0, 1, 0xffff_ffff);
            let data = seg(0x18, 0x3, 1, 0, 1, 1, 0xffff_ffff);
            s.cs = code;
            s.ds = data;
            s.es = data;
            s.fs = data;
            s.gs = data;
            s.ss = data;
            s.tr = seg(0x20, 0xb, 0, 0, 0, 0, 0x67);
            s.gdt.base = GDT_ADDR;
            s.gdt.limit = (GDT64.len() * 8 - 1) as u16;
            s.cr0 = CR0_PE | CR0_ET | CR0_PG;
            s.cr3 = PML4;
            s.cr4 = CR4_PAE;
            s.efer = EFER_LME | EFER_LMA;
        }
    }
    vcpu.set_sregs(&s).map_err(|e| format!("KVM_SET_SREGS: {e}"))
}

/// KVM_SET_REGS with RFLAGS = 0x2, RIP = `rip`, everything else from `f`.
pub fn set_entry_regs(vcpu: &VcpuFd, rip: u64, f: impl FnOnce(&mut kvm_regs)) -> Res<()> {
    let mut r = kvm_regs { rflags: 0x2, rip, ..Default::default() };
    f(&mut r);
    vcpu.set_regs(&r).map_err(|e| format!("KVM_SET_REGS: {e}"))
}

pub fn fmt_seg(name: &str, s: &kvm_segment) -> String {
    format!(
        "{name}: sel={:#06x} base={:#x} limit={:#x} type={:#x} s={} l={} db={} g={} p={} unusable={}",
        s.selector, s.base, s.limit, s.type_, s.s, s.l, s.db, s.g, s.present, s.unusable
    )
}

pub fn dump_sregs(vcpu: &VcpuFd) -> String {
    match vcpu.get_sregs() {
        Ok(s) => format!(
            "  cr0={:#x} cr3={:#x} cr4={:#x} efer={:#x} gdt={:#x}/{:#x} idt={:#x}/{:#x}\n  {}\n  {}\n  {}",
            s.cr0,
            s.cr3,
            s.cr4,
            s.efer,
            s.gdt.base,
            s.gdt.limit,
            s.idt.base,
            s.idt.limit,
            fmt_seg("cs", &s.cs),
            fmt_seg("ds", &s.ds),
            fmt_seg("tr", &s.tr)
        ),
        Err(e) => format!("  KVM_GET_SREGS failed: {e}"),
    }
}

pub fn dump_regs(vcpu: &VcpuFd) -> String {
    match vcpu.get_regs() {
        Ok(r) => format!(
            "  rip={:#x} rsp={:#x} rflags={:#x} rax={:#x} rbx={:#x} rcx={:#x} rdx={:#x} rsi={:#x} rdi={:#x} rbp={:#x}",
            r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp
        ),
        Err(e) => format!("  KVM_GET_REGS failed: {e}"),
    }
}
