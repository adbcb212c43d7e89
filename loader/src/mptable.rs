//! Intel MultiProcessor Specification 1.4 tables: how a guest without ACPI learns its CPUs,
//! its IOAPIC and how the ISA interrupts reach it.
//!
//! [`mptable`] returns the bytes to place at one guest-physical address, laid out as:
//!
//! | offset | bytes | what (MP spec 1.4 section) |
//! |---|---|---|
//! | 0 | 16 | floating pointer structure `_MP_` (§4.1): `physptr` = address + 16, length 1 paragraph, spec rev 4, feature byte 1 = 0 (a configuration table is present), feature byte 2 = 0 (virtual-wire mode, no IMCR) |
//! | 16 | 44 | configuration table header `PCMP` (§4.2): spec rev 4, OEM id `ANYBOOT `, product id `ANYBOOT     `, local APIC at `0xfee00000`, no OEM or extended table |
//! | 60 | 20 × N | one processor entry (type 0, §4.3.1) per CPU: APIC id = CPU index, APIC version 0x14, enabled, the bootstrap processor flag on CPU 0, signature family 6, features FPU + APIC |
//! | … | 8 | bus entry (type 1, §4.3.2): bus 0, `ISA   ` |
//! | … | 8 | I/O APIC entry (type 2, §4.3.3): id N (the first id after the CPUs), version 0x11, enabled, at `0xfec00000` |
//! | … | 8 × 16 | I/O interrupt assignment entries (type 3, §4.3.4): `INT`, bus-conforming polarity and trigger, ISA IRQ *i* → IOAPIC pin *i*, for *i* = 0..15 |
//! | … | 8 × 2 | local interrupt assignment entries (type 4, §4.3.5): `ExtINT` → LINT0 and `NMI` → LINT1 of every local APIC (destination 0xff), as in the spec's default configurations (§5.3) |
//!
//! Entries are sorted by type, as §4.3 requires. Both checksums make their structure's bytes
//! sum to 0 modulo 256 (the floating pointer's 16 bytes; the header plus every base entry).
//! The table for 255 CPUs is 5320 bytes, so it always fits the [`layout::MPTABLE_MAX`] bytes the
//! layout sets aside (checked at compile time).
//!
//! **IRQ 0 goes to pin 0, not pin 2.** On PC hardware (and under QEMU, which reprograms KVM's
//! routing and announces an override) the timer's ISA IRQ 0 arrives on IOAPIC pin 2. anyboot
//! runs on KVM's default GSI routing (`kvm_setup_default_irq_routing`), where GSI *n* goes to
//! IOAPIC pin *n* and the in-kernel PIT raises GSI 0, so the table maps every ISA IRQ *i* to
//! pin *i*, as Firecracker and Cloud Hypervisor do.
//!
//! **Where it goes.** Linux looks for the floating pointer in the first KiB of memory, the KiB
//! below 640 KiB ([`layout::MPTABLE_ADDR`], 0x9fc00) and the BIOS area 0xf0000..0x100000;
//! the floating pointer must start on a 16-byte boundary and the configuration table must sit
//! below 4 GiB (its pointer is 32 bits), which [`mptable`] checks.
//!
//! **Why hand-written.** No maintained crate writes MP tables: each VMM carries its own in-tree
//! module (Firecracker's `arch/x86_64/mptable.rs` on bindgen'd Linux `mpspec_def.h`
//! structures; crosvm and Cloud Hypervisor have relatives of the same code), written against
//! its own guest-memory types. Here the structures are written from the specification with
//! zerocopy derives, and the function returns bytes.
//! `loader/tests/mptable.rs` checks the result with a parser written from the specification,
//! with dmidecode's `biosdecode` (the floating pointer) and with `x86info --mptable` (the
//! processor entries).

use core::mem::{offset_of, size_of};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::layout;

/// Most CPUs an MP table describes: xAPIC ids are 8 bits and 0xff is the broadcast id.
pub const MAX_CPUS: u32 = 255;
/// Where the table says each CPU's local APIC is ([`layout::LAPIC_ADDR`], as a 32-bit field).
#[allow(clippy::cast_possible_truncation)] // below 4 GiB, checked in layout
pub const LOCAL_APIC_ADDR: u32 = layout::LAPIC_ADDR as u32;
/// Where the table says the IOAPIC is ([`layout::IOAPIC_ADDR`], as a 32-bit field).
#[allow(clippy::cast_possible_truncation)] // below 4 GiB, checked in layout
pub const IOAPIC_ADDR: u32 = layout::IOAPIC_ADDR as u32;
/// Local APIC version in the processor entries (an integrated xAPIC, as KVM reports).
pub const LOCAL_APIC_VERSION: u8 = 0x14;
/// IOAPIC version in the IOAPIC entry (KVM's in-kernel IOAPIC, 24 pins).
pub const IOAPIC_VERSION: u8 = 0x11;
/// ISA IRQs the table assigns to IOAPIC pins (0..15, each to the pin of its own number).
pub const ISA_IRQS: u8 = 16;

const FLOATING_SIGNATURE: [u8; 4] = *b"_MP_";
const TABLE_SIGNATURE: [u8; 4] = *b"PCMP";
/// MP specification revision 1.4.
const SPEC_REV: u8 = 4;
const OEM_ID: [u8; 8] = *b"ANYBOOT ";
const PRODUCT_ID: [u8; 12] = *b"ANYBOOT     ";
const BUS_ISA: [u8; 6] = *b"ISA   ";

const ENTRY_PROCESSOR: u8 = 0;
const ENTRY_BUS: u8 = 1;
const ENTRY_IOAPIC: u8 = 2;
const ENTRY_IO_INTERRUPT: u8 = 3;
const ENTRY_LOCAL_INTERRUPT: u8 = 4;

/// Processor entry flags: `EN` (usable) and `BP` (the bootstrap processor).
const CPU_ENABLED: u8 = 1 << 0;
const CPU_BOOTSTRAP: u8 = 1 << 1;
/// CPU signature (CPUID leaf 1 EAX layout): family 6, model 0, stepping 0.
const CPU_SIGNATURE: u32 = 0x600;
/// CPU feature flags (CPUID leaf 1 EDX layout): FPU (bit 0) and APIC (bit 9).
const CPU_FEATURES: u32 = (1 << 0) | (1 << 9);
/// IOAPIC entry flag `EN`.
const IOAPIC_ENABLED: u8 = 1 << 0;

/// Interrupt types of the assignment entries (§4.3.4, table 4-9).
const INT_TYPE_INT: u8 = 0;
const INT_TYPE_NMI: u8 = 1;
const INT_TYPE_EXTINT: u8 = 3;
/// Polarity and trigger mode both "conforms to the specifications of the bus".
const INT_FLAGS_CONFORMING: u16 = 0;
/// Destination local APIC id meaning "every local APIC".
const ALL_LOCAL_APICS: u8 = 0xff;
const ISA_BUS_ID: u8 = 0;

/// The floating pointer structure (§4.1, 16 bytes).
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct FloatingPointer {
    signature: [u8; 4],
    physptr: u32,
    /// In 16-byte paragraphs.
    length: u8,
    spec_rev: u8,
    checksum: u8,
    /// 0: a configuration table is present (else the number of a default configuration).
    feature1: u8,
    /// Bit 7 (IMCRP): the IMCR is present and PIC mode is implemented.
    feature2: u8,
    feature3_5: [u8; 3],
}

/// The configuration table header (§4.2, 44 bytes).
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct TableHeader {
    signature: [u8; 4],
    /// Header plus base entries, in bytes.
    base_length: u16,
    spec_rev: u8,
    checksum: u8,
    oem_id: [u8; 8],
    product_id: [u8; 12],
    oem_table: u32,
    oem_table_size: u16,
    entry_count: u16,
    local_apic: u32,
    extended_length: u16,
    extended_checksum: u8,
    reserved: u8,
}

/// A processor entry (§4.3.1, 20 bytes).
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct Processor {
    entry_type: u8,
    apic_id: u8,
    apic_version: u8,
    flags: u8,
    signature: u32,
    features: u32,
    reserved: [u8; 8],
}

/// A bus entry (§4.3.2, 8 bytes).
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct Bus {
    entry_type: u8,
    bus_id: u8,
    bus_type: [u8; 6],
}

/// An I/O APIC entry (§4.3.3, 8 bytes).
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct Ioapic {
    entry_type: u8,
    id: u8,
    version: u8,
    flags: u8,
    address: u32,
}

/// An I/O (type 3, §4.3.4) or local (type 4, §4.3.5) interrupt assignment entry (8 bytes):
/// the two share one layout; `dest_id` is an IOAPIC id or a local APIC id and `dest_pin` an
/// IOAPIC INTIN or a LINTIN.
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct Interrupt {
    entry_type: u8,
    int_type: u8,
    flags: u16,
    source_bus: u8,
    source_irq: u8,
    dest_id: u8,
    dest_pin: u8,
}

const _: () = {
    assert!(size_of::<FloatingPointer>() == 16);
    assert!(offset_of!(FloatingPointer, physptr) == 4);
    assert!(offset_of!(FloatingPointer, checksum) == 10);
    assert!(offset_of!(FloatingPointer, feature2) == 12);
    assert!(size_of::<TableHeader>() == 44);
    assert!(offset_of!(TableHeader, base_length) == 4);
    assert!(offset_of!(TableHeader, checksum) == 7);
    assert!(offset_of!(TableHeader, oem_id) == 8);
    assert!(offset_of!(TableHeader, product_id) == 16);
    assert!(offset_of!(TableHeader, oem_table) == 28);
    assert!(offset_of!(TableHeader, entry_count) == 34);
    assert!(offset_of!(TableHeader, local_apic) == 36);
    assert!(offset_of!(TableHeader, extended_length) == 40);
    assert!(size_of::<Processor>() == 20);
    assert!(offset_of!(Processor, signature) == 4);
    assert!(offset_of!(Processor, features) == 8);
    assert!(size_of::<Bus>() == 8);
    assert!(size_of::<Ioapic>() == 8);
    assert!(offset_of!(Ioapic, address) == 4);
    assert!(size_of::<Interrupt>() == 8);
    assert!(offset_of!(Interrupt, source_bus) == 4);
    assert!(offset_of!(Interrupt, dest_pin) == 7);
    assert!(size_of::<TableHeader>() == HEADER_LEN as usize);
    assert!(size_of::<Processor>() == PROCESSOR_LEN as usize);
    assert!(size_of::<Bus>() == ENTRY_LEN as usize);
    assert!(size_of::<Ioapic>() == ENTRY_LEN as usize);
    assert!(size_of::<Interrupt>() == ENTRY_LEN as usize);
};

/// Entries after the processors: the bus, the IOAPIC, the ISA IRQs and the two local
/// interrupts.
const FIXED_ENTRIES: u16 = 1 + 1 + ISA_IRQS as u16 + 2;

/// Sizes of the structures, as the table's 16-bit length field counts them (each checked
/// against `size_of` above).
const HEADER_LEN: u16 = 44;
const PROCESSOR_LEN: u16 = 20;
const ENTRY_LEN: u16 = 8;

/// Bytes of the configuration table (header and base entries) for `cpus` CPUs. Cannot
/// overflow: at most 44 + 255 × 20 + 20 × 8 = 5304.
const fn table_len(cpus: u8) -> u16 {
    HEADER_LEN + cpus as u16 * PROCESSOR_LEN + FIXED_ENTRIES * ENTRY_LEN
}

/// Bytes [`mptable`] returns for `cpus` CPUs: the floating pointer and the table.
const fn total_len(cpus: u8) -> usize {
    size_of::<FloatingPointer>() + table_len(cpus) as usize
}

// The largest table fits the area the layout reserves.
const _: () = assert!(total_len(u8::MAX) as u64 <= layout::MPTABLE_MAX);

/// Why no MP table can be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MpTableError {
    /// Zero CPUs.
    #[error("an MP table needs at least one CPU")]
    NoCpus,
    /// More CPUs than 8-bit xAPIC ids can name.
    #[error("{cpus} CPUs: an MP table describes at most {MAX_CPUS} (8-bit APIC ids)")]
    TooManyCpus {
        /// The count asked for.
        cpus: u32,
    },
    /// The floating pointer does not start on a 16-byte boundary.
    #[error("MP floating pointer at {at:#x}: must be 16-byte aligned")]
    Misaligned {
        /// The address asked for.
        at: u64,
    },
    /// Some of the table would lie at or above 4 GiB, out of reach of its 32-bit pointer.
    #[error("MP table at {at:#x}..{end:#x}: must lie below 4 GiB")]
    AboveFourGiB {
        /// The address asked for.
        at: u64,
        /// One past the table's last byte (saturated at `u64::MAX`).
        end: u64,
    },
}

/// The 8-bit value that makes `bytes` sum to 0 modulo 256 when added to them.
fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |sum, b| sum.wrapping_add(*b)))
}

/// The MP table for `cpus` CPUs (1 to [`MAX_CPUS`]), as the bytes to place at guest-physical
/// address `at`: the floating pointer first, the configuration table right after it at
/// `at + 16`. See the [module documentation](self) for every field.
///
/// # Errors
///
/// [`MpTableError`]: zero or more than 255 CPUs, `at` not 16-byte aligned, or the table
/// reaching 4 GiB.
pub fn mptable(cpus: u32, at: u64) -> Result<Vec<u8>, MpTableError> {
    let n = match u8::try_from(cpus) {
        Ok(0) => return Err(MpTableError::NoCpus),
        Ok(n) => n,
        Err(_) => return Err(MpTableError::TooManyCpus { cpus }),
    };
    if !at.is_multiple_of(16) {
        return Err(MpTableError::Misaligned { at });
    }
    let total = total_len(n);
    let end = u64::try_from(total)
        .ok()
        .and_then(|len| at.checked_add(len));
    let table_addr = match end {
        Some(end) if end <= 1 << 32 => at
            .checked_add(16)
            .and_then(|a| u32::try_from(a).ok())
            .ok_or(MpTableError::AboveFourGiB { at, end })?,
        _ => {
            return Err(MpTableError::AboveFourGiB {
                at,
                end: end.unwrap_or(u64::MAX),
            });
        }
    };

    let mut entries: Vec<u8> = Vec::with_capacity(total);
    for id in 0..n {
        let bsp = if id == 0 { CPU_BOOTSTRAP } else { 0 };
        let cpu = Processor {
            entry_type: ENTRY_PROCESSOR,
            apic_id: id,
            apic_version: LOCAL_APIC_VERSION,
            flags: CPU_ENABLED | bsp,
            signature: CPU_SIGNATURE,
            features: CPU_FEATURES,
            reserved: [0; 8],
        };
        entries.extend_from_slice(cpu.as_bytes());
    }
    let bus = Bus {
        entry_type: ENTRY_BUS,
        bus_id: ISA_BUS_ID,
        bus_type: BUS_ISA,
    };
    entries.extend_from_slice(bus.as_bytes());
    // The first id after the CPUs' 0..n; n <= 255, so it fits.
    let ioapic_id = n;
    let ioapic = Ioapic {
        entry_type: ENTRY_IOAPIC,
        id: ioapic_id,
        version: IOAPIC_VERSION,
        flags: IOAPIC_ENABLED,
        address: IOAPIC_ADDR,
    };
    entries.extend_from_slice(ioapic.as_bytes());
    for irq in 0..ISA_IRQS {
        let int = Interrupt {
            entry_type: ENTRY_IO_INTERRUPT,
            int_type: INT_TYPE_INT,
            flags: INT_FLAGS_CONFORMING,
            source_bus: ISA_BUS_ID,
            source_irq: irq,
            dest_id: ioapic_id,
            // KVM's default routing: GSI n -> IOAPIC pin n (see the module documentation).
            dest_pin: irq,
        };
        entries.extend_from_slice(int.as_bytes());
    }
    for (int_type, lint) in [(INT_TYPE_EXTINT, 0), (INT_TYPE_NMI, 1)] {
        let int = Interrupt {
            entry_type: ENTRY_LOCAL_INTERRUPT,
            int_type,
            flags: INT_FLAGS_CONFORMING,
            source_bus: ISA_BUS_ID,
            source_irq: 0,
            dest_id: ALL_LOCAL_APICS,
            dest_pin: lint,
        };
        entries.extend_from_slice(int.as_bytes());
    }

    let mut header = TableHeader {
        signature: TABLE_SIGNATURE,
        base_length: table_len(n),
        spec_rev: SPEC_REV,
        checksum: 0,
        oem_id: OEM_ID,
        product_id: PRODUCT_ID,
        oem_table: 0,
        oem_table_size: 0,
        entry_count: u16::from(n) + FIXED_ENTRIES,
        local_apic: LOCAL_APIC_ADDR,
        extended_length: 0,
        extended_checksum: 0,
        reserved: 0,
    };
    header.checksum = checksum(header.as_bytes()).wrapping_add(checksum(&entries));

    let mut floating = FloatingPointer {
        signature: FLOATING_SIGNATURE,
        physptr: table_addr,
        length: 1,
        spec_rev: SPEC_REV,
        checksum: 0,
        feature1: 0,
        feature2: 0,
        feature3_5: [0; 3],
    };
    floating.checksum = checksum(floating.as_bytes());

    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(floating.as_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&entries);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_follow_the_cpu_count() {
        assert_eq!(total_len(1), 16 + 44 + 20 + 160);
        assert_eq!(total_len(255), 5320);
        for n in [1u8, 2, 17, 255] {
            assert_eq!(mptable(n.into(), 0).unwrap().len(), total_len(n));
        }
    }

    #[test]
    fn checksum_zeroes_the_sum() {
        let bytes = [1u8, 2, 250];
        let c = checksum(&bytes);
        assert_eq!(
            bytes.iter().fold(c, |s, b| s.wrapping_add(*b)),
            0,
            "checksum {c}"
        );
        assert_eq!(checksum(&[]), 0);
    }
}
