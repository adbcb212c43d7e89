//! Whatever the bytes, `inspect` returns a value or an error: never a panic, never unbounded
//! memory. Inputs: random bytes, every truncation of the header region of valid images, and
//! random byte and bit changes in their headers.

// Test images are small: their sizes always fit the narrower integer types.
#![allow(clippy::cast_possible_truncation)]

use std::io::{Cursor, Write};

use anyboot_fixtures::{BzSpec, ElfSpec, NoteSpec, build_elf, bzimage, multiboot_flat, uint};
use loader::inspect::inspect;
use proptest::prelude::*;

fn pvh() -> Vec<u8> {
    build_elf(&ElfSpec {
        note_segments: vec![
            vec![
                NoteSpec::xen_str(6, "linux"),
                NoteSpec::xen(18, uint(0x100_0000, 8, false)),
            ],
            vec![NoteSpec::xen(19, uint(0x1000, 4, false))],
        ],
        extra_sections: vec![(
            "__xen_guest".into(),
            b"GUEST_OS=x,LOADER=generic\0".to_vec(),
        )],
        ..ElfSpec::default()
    })
}

fn gzip_bz() -> Vec<u8> {
    let elf = pvh();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&elf).unwrap();
    let payload = enc.finish().unwrap();
    bzimage(&BzSpec {
        payload,
        uncompressed_len: elf.len() as u32,
        ..BzSpec::default()
    })
}

fn run(bytes: &[u8]) {
    let _ = inspect(&mut Cursor::new(bytes));
}

#[test]
fn valid_fixtures_inspect() {
    let r = inspect(&mut Cursor::new(gzip_bz())).unwrap();
    assert_eq!(r.pvh_entry, Some(0x100_0000));
    let r = inspect(&mut Cursor::new(pvh())).unwrap();
    assert_eq!(r.pvh_entry, Some(0x100_0000));
    let r = inspect(&mut Cursor::new(multiboot_flat(0x40, 0x2000, 0x10_4000))).unwrap();
    assert_eq!(r.multiboot.unwrap().entry(), Some(0x10_0010));
}

#[test]
fn every_truncation_of_the_headers() {
    for img in [gzip_bz(), pvh(), multiboot_flat(0x40, 0x2000, 0)] {
        for len in 0..img.len().min(0x1400) {
            run(&img[..len]);
        }
        // and a few past the header region, into the payload
        for len in (0x1400..img.len()).step_by(97) {
            run(&img[..len]);
        }
    }
}

#[test]
fn every_byte_of_the_setup_header_set_to_extremes() {
    let img = gzip_bz();
    for off in 0x1f1..0x270 {
        for v in [0x00, 0x01, 0x7f, 0x80, 0xff] {
            let mut m = img.clone();
            m[off] = v;
            run(&m);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        run(&bytes);
    }

    #[test]
    fn random_bytes_after_magics(
        which in 0usize..4,
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut img = match which {
            0 => b"\x7fELF\x02\x01\x01".to_vec(),
            1 => b"\x7fELF\x01\x02\x01".to_vec(),
            2 => { let mut v = vec![0u8; 0x202]; v.extend_from_slice(b"HdrS\x0f\x02"); v }
            _ => 0x1bad_b002u32.to_le_bytes().to_vec(),
        };
        img.extend_from_slice(&bytes);
        run(&img);
    }

    #[test]
    fn bit_flips_in_valid_images(
        which in 0usize..2,
        flips in proptest::collection::vec((0usize..0x2000, 0u8..8), 1..16),
    ) {
        let mut img = if which == 0 { gzip_bz() } else { pvh() };
        for (pos, bit) in flips {
            let n = img.len();
            img[pos % n] ^= 1 << bit;
        }
        run(&img);
    }
}
