//! The decompression limits: `inspect` decompresses only as far as the inner vmlinux's notes
//! and never past `INSPECT_DECOMPRESS_BOUND`; extraction stops at the size the payload trailer
//! declares, which the plan caps at the guest's memory. Each is refused with exit status 2 and
//! one line naming the limit, checked against payloads built here with flate2 (an independent
//! encoder).

mod cli;

use anyboot_fixtures::{
    BzSpec, ElfSpec, NoteSpec, build_elf, bzimage, program_header, scratch, uint,
};
use cli::refused;

fn pvh_elf() -> Vec<u8> {
    build_elf(&ElfSpec {
        note_segments: vec![vec![NoteSpec::xen(18, uint(0x100_0000, 4, false))]],
        ..Default::default()
    })
}

/// A bzImage around `inner` (gzip) whose trailer declares `declared` bytes.
fn bz(inner: &[u8], declared: u32, name: &str) -> std::path::PathBuf {
    let img = bzimage(&BzSpec {
        uncompressed_len: declared,
        ..BzSpec::gzip_of(inner)
    });
    let p = scratch(name);
    std::fs::write(&p, img).unwrap();
    p
}

/// A vmlinux whose PT_NOTE segment claims to sit 300 MiB in, in a payload declaring 400 MiB:
/// inspect refuses before decompressing toward it.
#[test]
fn inspect_stops_at_its_bound() {
    let mut elf = pvh_elf();
    // Move PT_NOTE to 300 MiB.
    let note_ph = program_header(&elf, 4).expect("a PT_NOTE header");
    elf[note_ph + 8..note_ph + 16].copy_from_slice(&(300u64 << 20).to_le_bytes());
    let k = bz(&elf, 400 << 20, "bound.bz");
    refused(
        &["inspect"],
        &k,
        &["past the 0x10000000-byte bound inspect decompresses to"],
    );
}

/// A vmlinux whose program header table claims to sit 300 MiB in (e_phoff): refused with the
/// table named, before decompressing toward it.
#[test]
fn inspect_bound_covers_the_program_header_table() {
    let mut elf = pvh_elf();
    elf[32..40].copy_from_slice(&(300u64 << 20).to_le_bytes());
    let k = bz(&elf, 400 << 20, "phdr-bound.bz");
    refused(
        &["inspect"],
        &k,
        &["program header table", "past the 0x10000000-byte bound"],
    );
}

/// A payload that inflates to 64 MiB while its trailer declares 1 MiB: extraction stops at
/// 1 MiB with an error instead of writing 64 MiB.
#[test]
fn extraction_stops_at_the_declared_size() {
    let mut elf = pvh_elf();
    elf.resize(64 << 20, 0);
    let k = bz(&elf, 1 << 20, "bomb.bz");
    let dir = scratch("extract-bomb");
    refused(
        &[
            "emit",
            "qemu",
            "--protocol",
            "pvh",
            "--extract-to",
            dir.to_str().unwrap(),
        ],
        &k,
        &["larger than the limit of 1048576 bytes"],
    );
    let left: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "no partial vmlinux is left behind: {left:?}"
    );
}

/// A trailer declaring more than the guest's memory: refused at plan time, before any
/// decompression.
#[test]
fn extraction_is_capped_at_guest_memory() {
    let k = bz(&pvh_elf(), 0xffff_fff0, "declares-4g.bz");
    refused(
        &["plan", "--protocol", "pvh", "--mem", "64"],
        &k,
        &["more than the guest's 64 MiB of memory"],
    );
}

/// An ELF over the 1 GiB inspect limit (a sparse file): refused by size, nothing read.
#[test]
fn elf_over_the_image_limit_is_refused() {
    let p = scratch("huge.elf");
    std::fs::write(&p, pvh_elf()).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len((1 << 30) + 1).unwrap();
    refused(
        &["inspect"],
        &p,
        &["over the 0x40000000-byte limit for ELF images"],
    );
}

/// A PT_NOTE segment of 2 MiB: over the 1 MiB note limit, refused before it is read.
#[test]
fn note_segment_over_the_note_limit_is_refused() {
    let mut elf = pvh_elf();
    let note_ph = program_header(&elf, 4).expect("a PT_NOTE header");
    elf[note_ph + 32..note_ph + 40].copy_from_slice(&(2u64 << 20).to_le_bytes());
    elf.resize(3 << 20, 0);
    let p = scratch("big-note.elf");
    std::fs::write(&p, elf).unwrap();
    refused(&["inspect"], &p, &["0x100000"]);
}
