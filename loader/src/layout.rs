//! Guest-physical layout: the one place that says where everything goes.
//!
//! Low memory follows the layout Firecracker and Cloud Hypervisor share (see the PVH notes):
//! boot GDT and IDT just above the BIOS data area, the PVH `hvm_start_info` and module list at
//! 0x6000, the PVH memory map / Linux zero page / multiboot information at 0x7000 (one protocol
//! per boot, so they never coexist), identity page tables from 0x9000, the command line at
//! 0x20000, and the kernel from 1 MiB. Above 3 GiB lies a 1 GiB hole for MMIO (virtio-mmio,
//! IOAPIC, LAPIC); RAM past it continues at 4 GiB.

use serde::Serialize;

/// Boot GDT: 6 entries (null, two code or null, data, and the 16-byte TSS descriptor).
pub const GDT_ADDR: u64 = 0x500;
/// Size of the boot GDT.
pub const GDT_SIZE: u64 = 6 * 8;
/// Boot IDT (one empty entry: any exception before the kernel loads its own IDT is a triple
/// fault, which the VMM reports as a reset).
pub const IDT_ADDR: u64 = 0x530;
/// A 104-byte 32-bit TSS the boot GDT's TSS descriptor points at.
pub const TSS_ADDR: u64 = 0x580;
/// PVH `hvm_start_info`.
pub const PVH_START_INFO_ADDR: u64 = 0x6000;
/// PVH module list (`hvm_modlist_entry[]`), right after `hvm_start_info`.
pub const PVH_MODLIST_ADDR: u64 = 0x6040;
/// Most modules the PVH module list holds between 0x6040 and 0x7000.
pub const PVH_MAX_MODULES: u64 = (BOOT_INFO_ADDR - PVH_MODLIST_ADDR) / 32;
/// PVH memory map, Linux zero page or multiboot information (one per boot).
pub const BOOT_INFO_ADDR: u64 = 0x7000;
/// Multiboot memory map (after the 116-byte information structure).
pub const MULTIBOOT_MMAP_ADDR: u64 = 0x7200;
/// Multiboot module list.
pub const MULTIBOOT_MODS_ADDR: u64 = 0x7800;
/// Multiboot boot-loader name string.
pub const MULTIBOOT_LOADER_NAME_ADDR: u64 = 0x7f00;
/// Boot stack pointer (Linux protocol).
pub const BOOT_STACK_POINTER: u64 = 0x8ff0;
/// PML4 of the identity map (Linux 64-bit protocol).
pub const PML4_ADDR: u64 = 0x9000;
/// PDPT of the identity map.
pub const PDPT_ADDR: u64 = 0xa000;
/// Page directories of the identity map: 4 pages of 2 MiB entries map the first 4 GiB.
pub const PD_ADDR: u64 = 0xb000;
/// End of the page-table area.
pub const PAGE_TABLES_END: u64 = 0xf000;
/// Kernel command line.
pub const CMDLINE_ADDR: u64 = 0x20000;
/// Largest command line anyboot places (64 KiB including the NUL).
pub const CMDLINE_MAX: u64 = 0x10000;
/// End of the low RAM below the EBDA.
pub const LOW_RAM_END: u64 = 0x9fc00;
/// Intel MP table (floating pointer, then the configuration table): the start of the EBDA,
/// reserved in the memory map, where the MP specification tells the OS to search first.
pub const MPTABLE_ADDR: u64 = LOW_RAM_END;
/// Bytes set aside for the MP table (the EBDA up to 0xa0000 is 1 KiB; the table for 255 CPUs
/// is about 5.4 KiB, so the area runs on into the reserved range below 1 MiB).
pub const MPTABLE_MAX: u64 = 0x2000;
/// Start of high memory, where kernels load.
pub const HIGH_RAM_START: u64 = 0x10_0000;
/// Start of the 32-bit MMIO hole.
pub const MMIO_HOLE_START: u64 = 0xc000_0000;
/// The IOAPIC (the PC default, where KVM's in-kernel IOAPIC answers).
pub const IOAPIC_ADDR: u64 = 0xfec0_0000;
/// The local APICs (the architectural default, where KVM's in-kernel LAPIC answers).
pub const LAPIC_ADDR: u64 = 0xfee0_0000;
/// The three pages KVM needs for the TSS of its real-mode emulation on Intel hosts
/// (KVM_SET_TSS_ADDR), in the MMIO hole just below the BIOS area at 4 GiB, outside RAM, where
/// QEMU and Firecracker put them.
pub const KVM_TSS_ADDR: u64 = 0xfffb_d000;
/// The page KVM uses for its identity map on Intel hosts (KVM_SET_IDENTITY_MAP_ADDR), just
/// below [`KVM_TSS_ADDR`].
pub const KVM_IDENTITY_MAP_ADDR: u64 = 0xfffb_c000;
/// End of the 32-bit MMIO hole (4 GiB).
pub const MMIO_HOLE_END: u64 = 0x1_0000_0000;

/// What a memory-map range is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RegionKind {
    /// Usable RAM.
    Ram,
    /// Reserved (BIOS area, MMIO hole).
    Reserved,
}

/// A memory-map range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Region {
    /// Start address.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
    /// Kind.
    pub kind: RegionKind,
}

impl Region {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.start + self.size
    }
}

/// The guest memory map for `mem` bytes of RAM: low RAM to 0x9fc00, the reserved BIOS area to
/// 1 MiB, RAM from 1 MiB to the MMIO hole, and the rest of RAM above 4 GiB.
pub fn memory_map(mem: u64) -> Vec<Region> {
    let mut map = vec![
        Region {
            start: 0,
            size: LOW_RAM_END,
            kind: RegionKind::Ram,
        },
        Region {
            start: LOW_RAM_END,
            size: HIGH_RAM_START - LOW_RAM_END,
            kind: RegionKind::Reserved,
        },
    ];
    let below = mem.min(MMIO_HOLE_START);
    if below > HIGH_RAM_START {
        map.push(Region {
            start: HIGH_RAM_START,
            size: below - HIGH_RAM_START,
            kind: RegionKind::Ram,
        });
    }
    if mem > MMIO_HOLE_START {
        map.push(Region {
            start: MMIO_HOLE_START,
            size: MMIO_HOLE_END - MMIO_HOLE_START,
            kind: RegionKind::Reserved,
        });
        map.push(Region {
            start: MMIO_HOLE_END,
            size: mem - MMIO_HOLE_START,
            kind: RegionKind::Ram,
        });
    }
    map
}

/// The RAM ranges of `memory_map(mem)` as (guest address, size): what a VMM backs with host
/// memory.
pub fn ram_ranges(mem: u64) -> Vec<(u64, u64)> {
    let map = memory_map(mem);
    let mut out: Vec<(u64, u64)> = Vec::new();
    // The low RAM and the reserved BIOS area are backed as one range up to 1 MiB.
    let low_end = map
        .iter()
        .filter(|r| r.end() <= HIGH_RAM_START)
        .map(Region::end)
        .max()
        .unwrap_or(0);
    out.push((0, low_end));
    for r in map
        .iter()
        .filter(|r| r.kind == RegionKind::Ram && r.start >= HIGH_RAM_START)
    {
        match out.last_mut() {
            Some(last) if last.0 + last.1 == r.start => last.1 += r.size,
            _ => out.push((r.start, r.size)),
        }
    }
    out
}

// The low-memory areas must not overlap, and everything must sit below the EBDA.
const _: () = {
    assert!(GDT_ADDR + GDT_SIZE <= IDT_ADDR);
    assert!(IDT_ADDR + 8 <= TSS_ADDR);
    assert!(TSS_ADDR + 0x68 <= PVH_START_INFO_ADDR);
    assert!(PVH_START_INFO_ADDR + 56 <= PVH_MODLIST_ADDR);
    assert!(BOOT_INFO_ADDR + 116 <= MULTIBOOT_MMAP_ADDR);
    assert!(BOOT_INFO_ADDR + 4096 <= BOOT_STACK_POINTER + 0x10);
    assert!(BOOT_STACK_POINTER < PML4_ADDR);
    assert!(PD_ADDR + 4 * 4096 <= PAGE_TABLES_END);
    assert!(PAGE_TABLES_END <= CMDLINE_ADDR);
    assert!(CMDLINE_ADDR + CMDLINE_MAX <= LOW_RAM_END);
    assert!(MPTABLE_ADDR + MPTABLE_MAX <= HIGH_RAM_START);
    assert!(KVM_IDENTITY_MAP_ADDR + 0x1000 == KVM_TSS_ADDR);
    assert!(MMIO_HOLE_START <= IOAPIC_ADDR && LAPIC_ADDR + 0x1000 <= KVM_IDENTITY_MAP_ADDR);
    assert!(MMIO_HOLE_START <= KVM_IDENTITY_MAP_ADDR && KVM_TSS_ADDR + 0x3000 <= MMIO_HOLE_END);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_guest() {
        let m = memory_map(512 << 20);
        assert_eq!(m.len(), 3);
        assert_eq!(m[2].start, HIGH_RAM_START);
        assert_eq!(m[2].end(), 512 << 20);
        assert_eq!(ram_ranges(512 << 20), vec![(0, 512 << 20)]);
    }

    #[test]
    fn big_guest_splits_at_the_hole() {
        let mem = 4u64 << 30;
        let m = memory_map(mem);
        let ram: u64 = m
            .iter()
            .filter(|r| r.kind == RegionKind::Ram)
            .map(|r| r.size)
            .sum();
        assert_eq!(ram, mem - (HIGH_RAM_START - LOW_RAM_END));
        assert_eq!(m.last().unwrap().start, MMIO_HOLE_END);
        assert_eq!(
            ram_ranges(mem),
            vec![(0, MMIO_HOLE_START), (MMIO_HOLE_END, mem - MMIO_HOLE_START)]
        );
    }
}
