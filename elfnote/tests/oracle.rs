//! elfnote against binutils' readelf and Xen's readnotes, on fixtures built by
//! `anyboot-fixtures` (object's ELF writer) and written to a temporary directory.

// Test images are small: their sizes always fit the narrower integer types.
#![allow(clippy::cast_possible_truncation)]

use std::path::{Path, PathBuf};

use anyboot_fixtures::kernels::tool_or_skip;
use anyboot_fixtures::oracle::{self, READNOTES};
use anyboot_fixtures::{ElfSpec, NoteSpec, PvhSpec, build_elf, pvh_elf, uint};
use elfnote::{XenValue, read_elf};

fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let p = anyboot_fixtures::scratch(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A Linux-like set of Xen notes, in the order Linux's xen-head.S emits them.
fn linux_like(big: bool) -> Vec<NoteSpec> {
    vec![
        NoteSpec::xen_str(6, "linux"),
        NoteSpec::xen_str(7, "2.6"),
        NoteSpec::xen_str(5, "xen-3.0"),
        NoteSpec::xen(3, uint(0xffff_ffff_8000_0000, 8, big)),
        NoteSpec::xen(15, uint(0x80_0000_0000, 8, big)),
        NoteSpec::xen(1, uint(0xffff_ffff_8304_e1c0, 8, big)),
        NoteSpec::xen_str(10, "!writable_page_tables|pae_pgdir_above_4gb"),
        NoteSpec::xen(17, uint(0x8801, 4, big)),
        NoteSpec::xen_str(9, "yes"),
        NoteSpec::xen_str(8, "generic"),
        NoteSpec::xen(13, [uint(1, 8, big), uint(1, 8, big)].concat()),
        NoteSpec::xen(14, uint(1, 4, big)),
        NoteSpec::xen(16, uint(1, 4, big)),
        NoteSpec::xen(12, uint(0xffff_8000_0000_0000, 8, big)),
        NoteSpec::xen(4, uint(0, 8, big)),
        NoteSpec::new("GNU", 3, (0u8..20).collect::<Vec<u8>>()),
        NoteSpec::new("Linux", 0x100, b"6.1.0-fixture\0".to_vec()),
        NoteSpec::xen(18, uint(0x100_0850, 8, big)),
        NoteSpec::xen(
            19,
            [uint(0x20_0000, 4, big), uint(0x100_0000, 4, big)].concat(),
        ),
    ]
}

fn fixtures() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "pvh32-4byte",
            pvh_elf(&PvhSpec {
                is_64: false,
                entry: 0x10_0000,
                entry_size: 4,
                big_endian: false,
            }),
        ),
        ("pvh64-8byte", pvh_elf(&PvhSpec::default())),
        (
            "linux-like",
            build_elf(&ElfSpec {
                note_segments: vec![linux_like(false)],
                ..ElfSpec::default()
            }),
        ),
        (
            "big-endian-ppc64",
            build_elf(&ElfSpec {
                big_endian: true,
                machine: 21,
                note_segments: vec![linux_like(true)],
                ..ElfSpec::default()
            }),
        ),
        (
            "several-pt-note-pvh-first",
            build_elf(&ElfSpec {
                note_segments: vec![
                    vec![NoteSpec::xen(18, uint(0x20_0000, 4, false))],
                    vec![NoteSpec::new("GNU", 3, vec![0xab; 20])],
                    vec![NoteSpec::xen_str(6, "NetBSD")],
                ],
                ..ElfSpec::default()
            }),
        ),
        (
            "eight-aligned",
            build_elf(&ElfSpec {
                note_align: 8,
                note_segments: vec![vec![
                    NoteSpec::new(
                        "GNU",
                        0x99,
                        vec![2, 0, 0, 0xc0, 4, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0],
                    ),
                    NoteSpec::xen(18, uint(0x30_0000, 8, false)),
                ]],
                ..ElfSpec::default()
            }),
        ),
        (
            "wrong-owner-type-18",
            build_elf(&ElfSpec {
                note_segments: vec![vec![
                    NoteSpec::new("GNU", 18, uint(0x100_0000, 4, false)),
                    NoteSpec::new("Xen2", 18, uint(0x100_0000, 4, false)),
                ]],
                ..ElfSpec::default()
            }),
        ),
    ]
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// (owner, size, hex) of every note elfnote found, in file order.
fn ours(bytes: &[u8]) -> Vec<(String, usize, String)> {
    let img = read_elf(bytes).unwrap();
    let mut v: Vec<(u64, String, usize, String)> = img
        .notes
        .xen
        .iter()
        .map(|n| (n.offset, "Xen".to_owned(), n.desc_size, hex(&n.raw)))
        .chain(
            img.notes
                .other
                .iter()
                .map(|n| (n.offset, n.owner.clone(), n.desc.len() / 2, n.desc.clone())),
        )
        .collect();
    v.sort();
    v.into_iter().map(|(_, o, s, h)| (o, s, h)).collect()
}

#[test]
fn every_note_matches_readelf() {
    let Some(readelf) = tool_or_skip("readelf") else {
        return;
    };
    for (name, bytes) in fixtures() {
        let path = write(name, &bytes);
        let theirs: Vec<(String, usize, String)> = oracle::readelf_notes(&readelf, &path)
            .into_iter()
            .map(|n| (n.owner, n.size, n.desc_hex))
            .collect();
        assert!(!theirs.is_empty(), "{name}: readelf printed no notes");
        assert_eq!(ours(&bytes), theirs, "{name}: notes differ from readelf -n");
        let (class, entry, _) = oracle::readelf_header(&readelf, &path);
        let img = read_elf(&bytes).unwrap();
        assert_eq!(img.layout.header.class.bits(), class, "{name}");
        assert_eq!(img.layout.header.entry, entry, "{name}");
    }
}

/// Compare with Xen's own reader, note by note, for the types readnotes names.
fn agree_with_readnotes(name: &str, path: &Path, bytes: &[u8], readnotes: &Path) {
    let theirs = oracle::readnotes(readnotes, path)
        .unwrap_or_else(|| panic!("{name}: readnotes refused the file"));
    assert!(!theirs.is_empty(), "{name}: readnotes printed nothing");
    let img = read_elf(bytes).unwrap();
    for (key, val) in &theirs {
        if key == "unknown" {
            let t = u32::from_str_radix(val.trim_start_matches("0x"), 16).unwrap();
            assert!(
                img.notes.xen.iter().any(|n| n.n_type == t),
                "{name}: readnotes saw type {t:#x}, we did not"
            );
            continue;
        }
        let ours = img
            .notes
            .xen
            .iter()
            .rev()
            .find(|n| n.name == key)
            .unwrap_or_else(|| panic!("{name}: readnotes printed {key}, we have no such note"));
        match &ours.value {
            XenValue::Number(v) => {
                let (rv, rsize) = oracle::readnotes_number(val)
                    .unwrap_or_else(|| panic!("{name}: cannot parse readnotes {key}: {val}"));
                // readnotes truncates PHYS32_ENTRY to 32 bits like libelf; so do we.
                assert_eq!((*v, ours.desc_size), (rv, rsize), "{name}: {key}");
            }
            XenValue::Text(s) => assert_eq!(s, val, "{name}: {key}"),
            XenValue::Features(f) => {
                let joined: Vec<String> = f
                    .iter()
                    .map(|f| format!("{}{}", if f.required { "!" } else { "" }, f.name))
                    .collect();
                assert_eq!(joined.join("|"), *val, "{name}: {key}");
            }
            XenValue::MaskValues(p) => {
                assert_eq!(
                    format!("mask={:#x} value={:#x}", p[0].mask, p[0].value),
                    *val,
                    "{name}: {key}"
                );
            }
            other => panic!("{name}: readnotes printed {key} as {val}, we have {other:?}"),
        }
    }
    // And the other way: every named note we decoded, readnotes printed too.
    for n in &img.notes.xen {
        if matches!(n.n_type, 11 | 15 | 16 | 17 | 19) {
            continue; // readnotes 4.17 prints these as unknown (checked above)
        }
        assert!(
            theirs.iter().any(|(k, _)| k == n.name),
            "{name}: we decoded {} that readnotes did not print",
            n.name
        );
    }
}

#[test]
fn xen_notes_match_readnotes() {
    let Some(readnotes) = tool_or_skip(READNOTES) else {
        return;
    };
    for (name, bytes) in fixtures() {
        if name == "wrong-owner-type-18" {
            continue; // no Xen notes: readnotes prints nothing to compare
        }
        let path = write(name, &bytes);
        agree_with_readnotes(name, &path, &bytes, &readnotes);
    }
}

#[test]
fn pvh_rules() {
    let get = |name: &str| fixtures().into_iter().find(|(n, _)| *n == name).unwrap().1;
    let img = read_elf(&get("pvh32-4byte")).unwrap();
    assert_eq!(img.layout.header.class.bits(), 32);
    assert_eq!(img.notes.pvh_entry(), Some(0x10_0000));
    assert_eq!(
        read_elf(&get("pvh64-8byte")).unwrap().notes.pvh_entry(),
        Some(0x100_0850)
    );
    assert_eq!(
        read_elf(&get("several-pt-note-pvh-first"))
            .unwrap()
            .notes
            .pvh_entry(),
        Some(0x20_0000),
        "a later PT_NOTE without the note must not hide the first one's"
    );
    assert_eq!(
        read_elf(&get("eight-aligned")).unwrap().notes.pvh_entry(),
        Some(0x30_0000)
    );
    let wrong = read_elf(&get("wrong-owner-type-18")).unwrap();
    assert_eq!(wrong.notes.pvh_entry(), None);
    assert!(wrong.notes.xen.is_empty());
    assert_eq!(wrong.notes.other.len(), 2);
    let be = read_elf(&get("big-endian-ppc64")).unwrap();
    assert_eq!(be.notes.pvh_entry(), Some(0x100_0850));
    assert_eq!(be.notes.guest_os(), Some("linux"));
}

#[test]
fn two_byte_phys32_entry_is_refused() {
    let bytes = build_elf(&ElfSpec {
        note_segments: vec![vec![NoteSpec::xen(18, vec![0x00, 0x10])]],
        ..ElfSpec::default()
    });
    let err = read_elf(&bytes).unwrap_err().to_string();
    assert!(
        err.contains("PHYS32_ENTRY") && err.contains("2-byte") && err.contains("offset 0x"),
        "{err}"
    );
}

#[test]
fn section_only_notes_and_xen_guest() {
    let bytes = build_elf(&ElfSpec {
        note_sections: false,
        section_only_notes: vec![NoteSpec::xen(18, uint(0x40_0000, 4, false))],
        extra_sections: vec![(
            "__xen_guest".into(),
            b"GUEST_OS=rumprun,XEN_VER=xen-3.0,VIRT_BASE=0x0,HYPERCALL_PAGE=0x2,LOADER=generic\0"
                .to_vec(),
        )],
        ..ElfSpec::default()
    });
    let img = read_elf(&bytes).unwrap();
    assert_eq!(img.notes.pvh_entry(), Some(0x40_0000));
    let g = img.notes.xen_guest.as_ref().expect("__xen_guest");
    assert_eq!(g.get("GUEST_OS"), Some("rumprun"));
    assert_eq!(img.notes.guest_os(), Some("rumprun"));
    // readnotes reads SHT_NOTE sections when no PT_NOTE has Xen notes: same entry.
    if let Some(readnotes) = tool_or_skip(READNOTES) {
        let path = write("section-only", &bytes);
        let theirs = oracle::readnotes(&readnotes, &path).expect("readnotes");
        let entry = theirs
            .iter()
            .find(|(k, _)| k == "PHYS32_ENTRY")
            .and_then(|(_, v)| oracle::readnotes_number(v))
            .expect("readnotes printed no PHYS32_ENTRY");
        assert_eq!(entry, (0x40_0000, 4));
    }
}
