//! The boot ABIs as Rust definitions, in one place: Xen's PVH `hvm_start_info` and its module
//! and memory-map entries; Linux's `setup_header`, `boot_params` (the zero page) and e820
//! entries; the multiboot v1 header, information structure, module and memory-map entries.
//!
//! Each structure is `#[repr(C)]` (packed where the C original is) with zerocopy derives, so a
//! backend writes it into guest memory as bytes without unsafe code. Sizes and field offsets are
//! checked at compile time against the published layouts: Xen's
//! `xen/include/public/arch-x86/hvm/start_info.h`, Linux's
//! `arch/x86/include/uapi/asm/bootparam.h` and the Multiboot Specification 0.6.96 §3.3. The test
//! `loader/tests/abi_oracle.rs` also compares them with `sizeof`/`offsetof` from the real C
//! headers (Debian's libxen-dev and linux-libc-dev). Written by hand (xen-sys style) because the
//! crates that carry some of these (linux-loader's bindgen output) bring the loader they belong
//! to, and none carries all three.

use core::mem::{offset_of, size_of};

use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

pub use elfnote::{XEN_ELFNOTE_PHYS32_ENTRY, XEN_ELFNOTE_PHYS32_RELOC};

/// Xen PVH (`hvm_start_info`, version 1).
pub mod xen {
    use super::*;

    /// `XEN_HVM_START_MAGIC_VALUE`: "xEn3" with bit 7 of the "E" set.
    pub const HVM_START_MAGIC: u32 = 0x336e_c578;
    /// The structure version anyboot writes (adds the memory map).
    pub const HVM_START_VERSION: u32 = 1;
    /// `SIF_PRIVILEGED`.
    pub const SIF_PRIVILEGED: u32 = 1 << 0;
    /// `SIF_INITDOMAIN`.
    pub const SIF_INITDOMAIN: u32 = 1 << 1;
    /// `SIF_MULTIBOOT_MOD`.
    pub const SIF_MULTIBOOT_MOD: u32 = 1 << 2;
    /// `SIF_MOD_START_PFN`.
    pub const SIF_MOD_START_PFN: u32 = 1 << 3;
    /// `SIF_VIRT_P2M_4TOOLS`.
    pub const SIF_VIRT_P2M_4TOOLS: u32 = 1 << 4;
    /// `SIF_PM_MASK`.
    pub const SIF_PM_MASK: u32 = 0xff << 8;
    /// `XEN_HVM_MEMMAP_TYPE_RAM`.
    pub const MEMMAP_RAM: u32 = 1;
    /// `XEN_HVM_MEMMAP_TYPE_RESERVED`.
    pub const MEMMAP_RESERVED: u32 = 2;
    /// `XEN_HVM_MEMMAP_TYPE_ACPI`.
    pub const MEMMAP_ACPI: u32 = 3;
    /// `XEN_HVM_MEMMAP_TYPE_NVS`.
    pub const MEMMAP_NVS: u32 = 4;
    /// `XEN_HVM_MEMMAP_TYPE_UNUSABLE`.
    pub const MEMMAP_UNUSABLE: u32 = 5;
    /// `XEN_HVM_MEMMAP_TYPE_DISABLED`.
    pub const MEMMAP_DISABLED: u32 = 6;
    /// `XEN_HVM_MEMMAP_TYPE_PMEM`.
    pub const MEMMAP_PMEM: u32 = 7;

    /// `struct hvm_start_info` (56 bytes; every u64 at an 8-byte offset, so i386 and x86_64
    /// agree).
    #[repr(C)]
    #[derive(
        Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
    )]
    #[allow(missing_docs)]
    pub struct HvmStartInfo {
        pub magic: u32,
        pub version: u32,
        pub flags: u32,
        pub nr_modules: u32,
        pub modlist_paddr: u64,
        pub cmdline_paddr: u64,
        pub rsdp_paddr: u64,
        pub memmap_paddr: u64,
        pub memmap_entries: u32,
        pub reserved: u32,
    }

    /// `struct hvm_modlist_entry` (32 bytes).
    #[repr(C)]
    #[derive(
        Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
    )]
    #[allow(missing_docs)]
    pub struct HvmModlistEntry {
        pub paddr: u64,
        pub size: u64,
        pub cmdline_paddr: u64,
        pub reserved: u64,
    }

    /// `struct hvm_memmap_table_entry` (24 bytes).
    #[repr(C)]
    #[derive(
        Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
    )]
    #[allow(missing_docs)]
    pub struct HvmMemmapTableEntry {
        pub addr: u64,
        pub size: u64,
        pub type_: u32,
        pub reserved: u32,
    }

    const _: () = {
        assert!(size_of::<HvmStartInfo>() == 56);
        assert!(offset_of!(HvmStartInfo, nr_modules) == 12);
        assert!(offset_of!(HvmStartInfo, modlist_paddr) == 16);
        assert!(offset_of!(HvmStartInfo, cmdline_paddr) == 24);
        assert!(offset_of!(HvmStartInfo, rsdp_paddr) == 32);
        assert!(offset_of!(HvmStartInfo, memmap_paddr) == 40);
        assert!(offset_of!(HvmStartInfo, memmap_entries) == 48);
        assert!(size_of::<HvmModlistEntry>() == 32);
        assert!(offset_of!(HvmModlistEntry, cmdline_paddr) == 16);
        assert!(size_of::<HvmMemmapTableEntry>() == 24);
        assert!(offset_of!(HvmMemmapTableEntry, type_) == 16);
    };
}

/// The Linux x86 boot protocol.
pub mod linux {
    use super::*;

    /// `boot_params.hdr` starts here in the zero page (and in the bzImage file).
    pub const SETUP_HEADER_OFFSET: usize = 0x1f1;
    /// Entries in `boot_params.e820_table` (`E820_MAX_ENTRIES_ZEROPAGE`).
    pub const E820_MAX_ENTRIES_ZEROPAGE: usize = 128;
    /// e820 RAM.
    pub const E820_RAM: u32 = 1;
    /// e820 reserved.
    pub const E820_RESERVED: u32 = 2;
    /// e820 ACPI reclaimable.
    pub const E820_ACPI: u32 = 3;
    /// e820 ACPI NVS.
    pub const E820_NVS: u32 = 4;
    /// e820 unusable.
    pub const E820_UNUSABLE: u32 = 5;
    /// `type_of_loader` for a loader without an assigned id.
    pub const LOADER_TYPE_UNDEFINED: u8 = 0xff;
    /// `boot_flag`.
    pub const BOOT_FLAG: u16 = 0xaa55;
    /// `header`: "HdrS".
    pub const HDRS: u32 = 0x5372_6448;
    /// `loadflags` bit 0.
    pub const LOADED_HIGH: u8 = 1 << 0;
    /// `loadflags` bit 7.
    pub const CAN_USE_HEAP: u8 = 1 << 7;
    /// `xloadflags` bit 0.
    pub const XLF_KERNEL_64: u16 = 1 << 0;
    /// `xloadflags` bit 1.
    pub const XLF_CAN_BE_LOADED_ABOVE_4G: u16 = 1 << 1;

    /// `struct setup_header` (packed, 0x7b bytes: 0x1f1 to 0x26c). This is also the parsed
    /// header [`crate::bzimage::SetupHeader`], whose methods apply the protocol's defaults.
    #[repr(C, packed)]
    #[derive(
        Debug,
        Clone,
        Copy,
        Default,
        PartialEq,
        Eq,
        serde::Serialize,
        FromBytes,
        IntoBytes,
        Immutable,
        KnownLayout,
    )]
    #[allow(missing_docs)]
    pub struct SetupHeader {
        pub setup_sects: u8,
        pub root_flags: u16,
        pub syssize: u32,
        pub ram_size: u16,
        pub vid_mode: u16,
        pub root_dev: u16,
        pub boot_flag: u16,
        pub jump: u16,
        pub header: u32,
        pub version: u16,
        pub realmode_swtch: u32,
        pub start_sys_seg: u16,
        pub kernel_version: u16,
        pub type_of_loader: u8,
        pub loadflags: u8,
        pub setup_move_size: u16,
        pub code32_start: u32,
        pub ramdisk_image: u32,
        pub ramdisk_size: u32,
        pub bootsect_kludge: u32,
        pub heap_end_ptr: u16,
        pub ext_loader_ver: u8,
        pub ext_loader_type: u8,
        pub cmd_line_ptr: u32,
        pub initrd_addr_max: u32,
        pub kernel_alignment: u32,
        pub relocatable_kernel: u8,
        pub min_alignment: u8,
        pub xloadflags: u16,
        pub cmdline_size: u32,
        pub hardware_subarch: u32,
        pub hardware_subarch_data: u64,
        pub payload_offset: u32,
        pub payload_length: u32,
        pub setup_data: u64,
        pub pref_address: u64,
        pub init_size: u32,
        pub handover_offset: u32,
        pub kernel_info_offset: u32,
    }

    /// `struct boot_e820_entry` (packed, 20 bytes).
    #[repr(C, packed)]
    #[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
    #[allow(missing_docs)]
    pub struct BootE820Entry {
        pub addr: u64,
        pub size: u64,
        pub type_: u32,
    }

    /// `struct boot_params`, the zero page (packed, 4096 bytes). Regions anyboot never writes
    /// are kept as byte arrays under their C names.
    #[repr(C, packed)]
    #[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
    #[allow(missing_docs)]
    pub struct BootParams {
        pub screen_info: [u8; 0x40],
        pub apm_bios_info: [u8; 0x14],
        pub _pad2: [u8; 4],
        pub tboot_addr: u64,
        pub ist_info: [u8; 0x10],
        pub acpi_rsdp_addr: u64,
        pub _pad3: [u8; 8],
        pub hd0_info: [u8; 16],
        pub hd1_info: [u8; 16],
        pub sys_desc_table: [u8; 16],
        pub olpc_ofw_header: [u8; 16],
        pub ext_ramdisk_image: u32,
        pub ext_ramdisk_size: u32,
        pub ext_cmd_line_ptr: u32,
        pub _pad4: [u8; 112],
        pub cc_blob_address: u32,
        pub edid_info: [u8; 0x80],
        pub efi_info: [u8; 0x20],
        pub alt_mem_k: u32,
        pub scratch: u32,
        pub e820_entries: u8,
        pub eddbuf_entries: u8,
        pub edd_mbr_sig_buf_entries: u8,
        pub kbd_status: u8,
        pub secure_boot: u8,
        pub _pad5: [u8; 2],
        pub sentinel: u8,
        pub _pad6: [u8; 1],
        pub hdr: SetupHeader,
        pub _pad7: [u8; 0x290 - 0x1f1 - size_of::<SetupHeader>()],
        pub edd_mbr_sig_buffer: [u32; 16],
        pub e820_table: [BootE820Entry; E820_MAX_ENTRIES_ZEROPAGE],
        pub _pad8: [u8; 48],
        pub eddbuf: [u8; 6 * 82],
        pub _pad9: [u8; 276],
    }

    impl Default for BootParams {
        fn default() -> Self {
            BootParams::new_zeroed()
        }
    }

    const _: () = {
        assert!(size_of::<SetupHeader>() == 0x26c - 0x1f1);
        assert!(offset_of!(SetupHeader, header) == 0x202 - 0x1f1);
        assert!(offset_of!(SetupHeader, version) == 0x206 - 0x1f1);
        assert!(offset_of!(SetupHeader, type_of_loader) == 0x210 - 0x1f1);
        assert!(offset_of!(SetupHeader, code32_start) == 0x214 - 0x1f1);
        assert!(offset_of!(SetupHeader, ramdisk_image) == 0x218 - 0x1f1);
        assert!(offset_of!(SetupHeader, cmd_line_ptr) == 0x228 - 0x1f1);
        assert!(offset_of!(SetupHeader, initrd_addr_max) == 0x22c - 0x1f1);
        assert!(offset_of!(SetupHeader, xloadflags) == 0x236 - 0x1f1);
        assert!(offset_of!(SetupHeader, cmdline_size) == 0x238 - 0x1f1);
        assert!(offset_of!(SetupHeader, payload_offset) == 0x248 - 0x1f1);
        assert!(offset_of!(SetupHeader, setup_data) == 0x250 - 0x1f1);
        assert!(offset_of!(SetupHeader, pref_address) == 0x258 - 0x1f1);
        assert!(offset_of!(SetupHeader, init_size) == 0x260 - 0x1f1);
        assert!(offset_of!(SetupHeader, kernel_info_offset) == 0x268 - 0x1f1);
        assert!(size_of::<BootE820Entry>() == 20);
        assert!(size_of::<BootParams>() == 4096);
        assert!(offset_of!(BootParams, acpi_rsdp_addr) == 0x070);
        assert!(offset_of!(BootParams, ext_ramdisk_image) == 0x0c0);
        assert!(offset_of!(BootParams, ext_cmd_line_ptr) == 0x0c8);
        assert!(offset_of!(BootParams, cc_blob_address) == 0x13c);
        assert!(offset_of!(BootParams, e820_entries) == 0x1e8);
        assert!(offset_of!(BootParams, sentinel) == 0x1ef);
        assert!(offset_of!(BootParams, hdr) == SETUP_HEADER_OFFSET);
        assert!(offset_of!(BootParams, edd_mbr_sig_buffer) == 0x290);
        assert!(offset_of!(BootParams, e820_table) == 0x2d0);
        assert!(offset_of!(BootParams, eddbuf) == 0xd00);
    };
}

/// Multiboot v1 (Multiboot Specification 0.6.96).
pub mod multiboot {
    use super::*;

    /// Header magic.
    pub const HEADER_MAGIC: u32 = crate::multiboot::MULTIBOOT_MAGIC;
    /// EAX at entry.
    pub const BOOTLOADER_MAGIC: u32 = crate::multiboot::MULTIBOOT_BOOTLOADER_MAGIC;
    /// `flags` bit 0 of the info structure: `mem_lower`/`mem_upper` valid.
    pub const INFO_MEMORY: u32 = 1 << 0;
    /// Bit 1: `boot_device` valid.
    pub const INFO_BOOTDEV: u32 = 1 << 1;
    /// Bit 2: `cmdline` valid.
    pub const INFO_CMDLINE: u32 = 1 << 2;
    /// Bit 3: `mods_count`/`mods_addr` valid.
    pub const INFO_MODS: u32 = 1 << 3;
    /// Bit 6: `mmap_length`/`mmap_addr` valid.
    pub const INFO_MEM_MAP: u32 = 1 << 6;
    /// Bit 9: `boot_loader_name` valid.
    pub const INFO_BOOT_LOADER_NAME: u32 = 1 << 9;
    /// Memory-map type: available RAM.
    pub const MEMORY_AVAILABLE: u32 = 1;
    /// Memory-map type: reserved.
    pub const MEMORY_RESERVED: u32 = 2;

    /// The header as it sits in the image (§3.1.1), all fields (48 bytes).
    #[repr(C)]
    #[derive(
        Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
    )]
    #[allow(missing_docs)]
    pub struct Header {
        pub magic: u32,
        pub flags: u32,
        pub checksum: u32,
        pub header_addr: u32,
        pub load_addr: u32,
        pub load_end_addr: u32,
        pub bss_end_addr: u32,
        pub entry_addr: u32,
        pub mode_type: u32,
        pub width: u32,
        pub height: u32,
        pub depth: u32,
    }

    /// The information structure (§3.3), up to the framebuffer fields (packed, 116 bytes).
    #[repr(C, packed)]
    #[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
    #[allow(missing_docs)]
    pub struct Info {
        pub flags: u32,
        pub mem_lower: u32,
        pub mem_upper: u32,
        pub boot_device: u32,
        pub cmdline: u32,
        pub mods_count: u32,
        pub mods_addr: u32,
        pub syms: [u32; 4],
        pub mmap_length: u32,
        pub mmap_addr: u32,
        pub drives_length: u32,
        pub drives_addr: u32,
        pub config_table: u32,
        pub boot_loader_name: u32,
        pub apm_table: u32,
        pub vbe_control_info: u32,
        pub vbe_mode_info: u32,
        pub vbe_mode: u16,
        pub vbe_interface_seg: u16,
        pub vbe_interface_off: u16,
        pub vbe_interface_len: u16,
        pub framebuffer_addr: u64,
        pub framebuffer_pitch: u32,
        pub framebuffer_width: u32,
        pub framebuffer_height: u32,
        pub framebuffer_bpp: u8,
        pub framebuffer_type: u8,
        pub color_info: [u8; 6],
    }

    /// A module entry (§3.3, 16 bytes).
    #[repr(C)]
    #[derive(
        Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
    )]
    #[allow(missing_docs)]
    pub struct Module {
        pub mod_start: u32,
        pub mod_end: u32,
        pub string: u32,
        pub reserved: u32,
    }

    /// A memory-map entry (packed, 24 bytes; `size` counts the 20 bytes after itself).
    #[repr(C, packed)]
    #[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
    #[allow(missing_docs)]
    pub struct MmapEntry {
        pub size: u32,
        pub base_addr: u64,
        pub length: u64,
        pub type_: u32,
    }

    const _: () = {
        assert!(size_of::<Header>() == 48);
        assert!(offset_of!(Header, header_addr) == 12);
        assert!(offset_of!(Header, entry_addr) == 28);
        assert!(offset_of!(Header, mode_type) == 32);
        assert!(size_of::<Info>() == 116);
        assert!(offset_of!(Info, cmdline) == 16);
        assert!(offset_of!(Info, mods_count) == 20);
        assert!(offset_of!(Info, syms) == 28);
        assert!(offset_of!(Info, mmap_length) == 44);
        assert!(offset_of!(Info, boot_loader_name) == 64);
        assert!(offset_of!(Info, vbe_control_info) == 72);
        assert!(offset_of!(Info, framebuffer_addr) == 88);
        assert!(offset_of!(Info, framebuffer_bpp) == 108);
        assert!(size_of::<Module>() == 16);
        assert!(size_of::<MmapEntry>() == 24);
        assert!(offset_of!(MmapEntry, base_addr) == 4);
        assert!(offset_of!(MmapEntry, type_) == 20);
    };
}
