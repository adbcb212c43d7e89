//! Kernel image formats and boot plans.
//!
//! - [`bzimage`]: the Linux x86 setup header;
//! - [`payload`]: streaming decoders for the bzImage payload (gzip, bzip2, lzma, xz with its
//!   x86 BCJ filter, lzo, lz4 legacy frames, zstd), each behind a default-on cargo feature;
//! - [`multiboot`]: multiboot v1 headers and multiboot2 detection;
//! - [`inspect`]: every entry point of an image, streaming a bzImage's payload only as far as
//!   the inner vmlinux's notes;
//! - [`abi`]: the boot ABIs (Xen `hvm_start_info`, Linux `boot_params`, multiboot info) as Rust
//!   definitions with compile-time layout checks;
//! - [`layout`]: the guest-physical layout, in one place;
//! - [`plan`]: the boot plan every backend consumes;
//! - [`boot`]: the boot structures and entry CPU state a plan asks a direct loader for;
//! - [`mptable`]: the Intel MP table that tells a guest about its CPUs and IOAPIC;
//! - [`initramfs`]: a cpio newc writer for `run --init`.
//!
//! Everything here is pure: bytes (or a reader over the image) in, values out.
#![deny(missing_docs)]

pub mod abi;
pub mod boot;
pub mod bzimage;
pub mod initramfs;
pub mod inspect;
pub mod layout;
pub mod mptable;
pub mod multiboot;
pub mod payload;
pub mod plan;
