//! The decompression limits: `inspect` decompresses only as far as the inner vmlinux's notes
//! and never past `INSPECT_DECOMPRESS_BOUND`; extraction stops at the size the payload trailer
//! declares, which the plan caps at the guest's memory. Each is refused with exit status 2 and
//! one line naming the limit, checked against payloads built here with flate2 (an independent
//! encoder).

use std::path::Path;
use std::process::{Command, Output};

use anyboot_fixtures::initramfs::gzip;
use anyboot_fixtures::{BzSpec, ElfSpec, NoteSpec, build_elf, bzimage, scratch, uint};

fn anyboot(args: &[&str], kernel: &Path) -> Output {
    Command::new(assert_cmd::cargo::cargo_bin!("anyboot"))
        .args(args)
        .arg(kernel)
        .output()
        .unwrap()
}

fn refused(args: &[&str], kernel: &Path, expect: &str) {
    let out = anyboot(args, kernel);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(
        err.contains(expect),
        "{args:?}: expected {expect:?} in {err}"
    );
}

fn pvh_elf() -> Vec<u8> {
    build_elf(&ElfSpec {
        note_segments: vec![vec![NoteSpec::xen(18, uint(0x100_0000, 4, false))]],
        ..Default::default()
    })
}

fn bz(inner_compressed: Vec<u8>, declared: u32, name: &str) -> std::path::PathBuf {
    let img = bzimage(&BzSpec {
        payload: inner_compressed,
        uncompressed_len: declared,
        ..Default::default()
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
    // Move PT_NOTE (program header 1 in the fixture: after the PT_LOAD) to 300 MiB.
    let phoff = usize::try_from(u64::from_le_bytes(elf[32..40].try_into().unwrap())).unwrap();
    let note_ph = (0..2)
        .map(|i| phoff + 56 * i)
        .find(|&o| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) == 4)
        .expect("a PT_NOTE header");
    elf[note_ph + 8..note_ph + 16].copy_from_slice(&(300u64 << 20).to_le_bytes());
    let k = bz(gzip(&elf), 400 << 20, "bound.bz");
    refused(
        &["inspect"],
        &k,
        "past the 0x10000000-byte bound inspect decompresses to",
    );
}

/// A payload that inflates to 64 MiB while its trailer declares 1 MiB: extraction stops at
/// 1 MiB with an error instead of writing 64 MiB.
#[test]
fn extraction_stops_at_the_declared_size() {
    let mut elf = pvh_elf();
    elf.resize(64 << 20, 0);
    let k = bz(gzip(&elf), 1 << 20, "bomb.bz");
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
        "larger than the limit of 1048576 bytes",
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
    let k = bz(gzip(&pvh_elf()), 0xffff_fff0, "declares-4g.bz");
    refused(
        &["plan", "--protocol", "pvh", "--mem", "64"],
        &k,
        "more than the guest's 64 MiB of memory",
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
        "over the 0x40000000-byte limit for ELF images",
    );
}

/// A PT_NOTE segment of 2 MiB: over the 1 MiB note limit, refused before it is read.
#[test]
fn note_segment_over_the_note_limit_is_refused() {
    let mut elf = pvh_elf();
    let phoff = usize::try_from(u64::from_le_bytes(elf[32..40].try_into().unwrap())).unwrap();
    let note_ph = (0..2)
        .map(|i| phoff + 56 * i)
        .find(|&o| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) == 4)
        .expect("a PT_NOTE header");
    elf[note_ph + 32..note_ph + 40].copy_from_slice(&(2u64 << 20).to_le_bytes());
    elf.resize(3 << 20, 0);
    let p = scratch("big-note.elf");
    std::fs::write(&p, elf).unwrap();
    refused(&["inspect"], &p, "0x100000");
}
