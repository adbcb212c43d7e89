//! Every refusal of `plan` and the emitters, fed the input that triggers it: exit status 2 and
//! one line on stderr that names the rule.

// Test images are small: their sizes always fit the narrower integer types.
#![allow(clippy::cast_possible_truncation)]

mod cli;

use std::path::Path;

use anyboot_fixtures::scratch;
use anyboot_fixtures::{BzSpec, ElfSpec, LoadSpec, NoteSpec, build_elf, bzimage, uint};

fn fails(args: &[&str], kernel: &Path, expect: &str) {
    cli::refused(args, kernel, &[expect]);
}

/// An x86-64 Linux-owned ELF, with or without a PVH note.
fn linux_elf(pvh: bool) -> Vec<u8> {
    let mut notes = vec![
        NoteSpec::xen_str(6, "linux"),
        NoteSpec::new("Linux", 0x100, b"6.1.0-fixture\0".to_vec()),
    ];
    if pvh {
        notes.push(NoteSpec::xen(18, uint(0x100_0000, 8, false)));
    }
    build_elf(&ElfSpec {
        note_segments: vec![notes],
        ..ElfSpec::default()
    })
}

#[test]
fn emitter_refusals() {
    let plain = scratch("vmlinux-no-pvh");
    std::fs::write(&plain, linux_elf(false)).unwrap();
    fails(
        &["emit", "qemu"],
        &plain,
        "QEMU loads an ELF kernel only through its PVH note",
    );
    let pvh = scratch("vmlinux-pvh");
    std::fs::write(&pvh, linux_elf(true)).unwrap();
    // 2040 bytes fit Linux's 2047, but not with " reboot=t panic=-1" appended for QEMU.
    let long = "x".repeat(2040);
    fails(
        &["emit", "qemu", "--cmdline", &long],
        &pvh,
        "with the appended \"reboot=t panic=-1\" is 2058 bytes; the kernel accepts at most 2047",
    );
    fails(
        &["emit", "firecracker", "--cpus", "33"],
        &pvh,
        "vcpu_count 33 is over Firecracker's 32",
    );
    fails(
        &["emit", "cloud-hypervisor", "--disk", "/srv/a\"b.img"],
        &pvh,
        "cannot be passed to --disk (Cloud Hypervisor's option parser removes or splits on them)",
    );
    fails(
        &["emit", "cloud-hypervisor"],
        &plain,
        "it needs an ELF with a PVH note or a bzImage",
    );
}

#[test]
fn overlapping_segments_are_refused_before_any_guest_runs() {
    let k = scratch("overlap");
    let load = |paddr| LoadSpec {
        paddr,
        vaddr: paddr,
        data: vec![0; 64],
        memsz: 0x2000,
        align: 0x1000,
    };
    std::fs::write(
        &k,
        build_elf(&ElfSpec {
            loads: vec![load(0x20_0000), load(0x20_1000)],
            note_segments: vec![vec![NoteSpec::xen(18, uint(0x20_0000, 4, false))]],
            ..ElfSpec::default()
        }),
    )
    .unwrap();
    fails(
        &["plan"],
        &k,
        "segment at 0x200000..0x202000 overlaps another segment at 0x201000..0x203000",
    );
}

#[test]
fn a_lying_size_trailer_stops_extraction() {
    let elf = linux_elf(true);
    let k = scratch("bz-lying-trailer");
    std::fs::write(
        &k,
        bzimage(&BzSpec {
            // The trailer claims 4 KiB more than the payload holds.
            uncompressed_len: elf.len() as u32 + 4096,
            ..BzSpec::gzip_of(&elf)
        }),
    )
    .unwrap();
    let dir = scratch("extract");
    fails(
        &[
            "emit",
            "qemu",
            "--protocol",
            "pvh",
            "--extract-to",
            dir.to_str().unwrap(),
        ],
        &k,
        &format!(
            "the payload decoded to {} bytes, its trailer says {}",
            elf.len(),
            elf.len() + 4096
        ),
    );
    // Nothing half-written is left behind.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}
