//! `anyboot inspect` end to end, against independent oracles computed at test time:
//! a shell pipeline (od/tail/head and the system decompressor, as in the notes' recipe) that
//! extracts the inner vmlinux, Xen's readnotes and binutils' readelf/objdump on what it
//! extracts, and `file` on the bzImage.

// Test images are small: their sizes always fit the narrower integer types.
#![allow(clippy::cast_possible_truncation)]

use std::path::{Path, PathBuf};
use std::process::Command;

use anyboot_fixtures::kernels::{kernel_or_skip, tool_or_skip};
use anyboot_fixtures::oracle::{self, READNOTES};
use anyboot_fixtures::scratch;
use anyboot_fixtures::{BzSpec, ElfSpec, LoadSpec, NoteSpec, build_elf, bzimage, uint};
use serde_json::Value;

/// Every tool of `names`, or `None` (after the loud skip lines) if one is missing.
fn tools_or_skip(names: &[&str]) -> Option<Vec<PathBuf>> {
    names.iter().map(|t| tool_or_skip(t)).collect()
}

fn anyboot() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin!("anyboot"))
}

fn inspect_json(path: &Path) -> Value {
    let out = anyboot()
        .args(["inspect", "--json"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "inspect --json {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("inspect --json printed invalid JSON")
}

fn sh(script: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "oracle pipeline failed: {script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Extract the inner vmlinux with the shell recipe (offsets from boot.rst, decompressor chosen
/// by the payload magic). Returns the decompressor used.
fn extract_with_shell(k: &Path, out: &Path) -> String {
    let script = format!(
        r#"K='{k}'; ss=$(od -An -tu1 -j 497 -N1 "$K"); [ "$ss" -eq 0 ] && ss=4
po=$(od -An -tu4 -j 584 -N4 "$K"); pl=$(od -An -tu4 -j 588 -N4 "$K")
off=$(( (ss + 1) * 512 + po )); m=$(od -An -tx1 -j $off -N4 "$K" | tr -d ' \n')
case $m in 02214c18) d=lz4;; fd377a58) d=xz;; 1f8b*) d=gzip;; 425a68*) d=bzip2;; 5d0000*) d=lzma;; 894c5a4f) d=lzop;; 28b52ffd) d=zstd;; *) echo "unknown magic $m" >&2; exit 1;; esac
tail -c +$((off + 1)) "$K" | head -c $((pl - 4)) | $d -dc > '{out}'; echo $d"#,
        k = k.display(),
        out = out.display()
    );
    sh(&script)
}

fn od_u(k: &Path, off: u64, size: u8) -> u64 {
    sh(&format!(
        "od -An -tu{size} -j {off} -N{size} '{}'",
        k.display()
    ))
    .parse()
    .unwrap()
}

/// Every Xen note readnotes prints matches the JSON's `xen_notes`.
fn assert_notes_match_readnotes(json: &Value, readnotes_out: &[(String, String)], what: &str) {
    let notes = json["xen_notes"].as_array().expect("xen_notes array");
    assert!(
        !readnotes_out.is_empty(),
        "{what}: readnotes printed nothing"
    );
    for (key, val) in readnotes_out {
        if key == "unknown" {
            let t = u64::from_str_radix(val.trim_start_matches("0x"), 16).unwrap();
            assert!(
                notes.iter().any(|n| n["type"] == t),
                "{what}: readnotes saw type {t:#x}; we did not"
            );
            continue;
        }
        let n = notes
            .iter()
            .rev()
            .find(|n| n["name"] == key.as_str())
            .unwrap_or_else(|| panic!("{what}: no {key} in xen_notes"));
        if let Some((v, size)) = oracle::readnotes_number(val) {
            assert_eq!(n["value"].as_u64(), Some(v), "{what}: {key}");
            assert_eq!(
                n["desc_size"].as_u64(),
                Some(size as u64),
                "{what}: {key} size"
            );
        } else if key == "L1_MFN_VALID" {
            let p = &n["value"][0];
            assert_eq!(
                format!(
                    "mask={:#x} value={:#x}",
                    p["mask"].as_u64().unwrap(),
                    p["value"].as_u64().unwrap()
                ),
                *val,
                "{what}"
            );
        } else if key == "FEATURES" {
            let joined: Vec<String> = n["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    format!(
                        "{}{}",
                        if f["required"] == true { "!" } else { "" },
                        f["name"].as_str().unwrap()
                    )
                })
                .collect();
            assert_eq!(joined.join("|"), *val, "{what}");
        } else {
            assert_eq!(n["value"].as_str(), Some(val.as_str()), "{what}: {key}");
        }
    }
}

fn check_debian(flavour: &str) {
    let Some(k) = kernel_or_skip(flavour) else {
        return;
    };
    let tools = ["readelf", READNOTES, "file", "objdump", "od", "lz4", "xz"];
    let Some(found) = tools_or_skip(&tools) else {
        return;
    };
    let (readelf, readnotes) = (&found[0], &found[1]);
    let json = inspect_json(&k.vmlinuz);
    let vmlinux = scratch(&format!("vmlinux-{flavour}"));
    let tool = extract_with_shell(&k.vmlinuz, &vmlinux);

    assert_eq!(json["format"], "bzimage");
    let bz = &json["bzimage"];
    let expect_compression = if tool == "lzop" { "lzo" } else { tool.as_str() };
    assert_eq!(bz["compression"], expect_compression, "compression");
    let size = std::fs::metadata(&vmlinux).unwrap().len();
    assert_eq!(
        bz["decompressed_size"].as_u64(),
        Some(size),
        "trailer vs extracted size"
    );
    let read = bz["decompressed_read"].as_u64().unwrap();
    assert!(
        read < size,
        "inspect decoded {read} of {size} bytes: it must stop at the notes"
    );

    // The inner ELF against readelf and readnotes on the extracted vmlinux.
    let (class, entry, machine) = oracle::readelf_header(readelf, &vmlinux);
    assert_eq!(json["elf_class"].as_u64(), Some(u64::from(class)));
    assert_eq!(json["elf_entry"].as_u64(), Some(entry));
    assert!(machine.contains("X86-64"), "{machine}");
    let theirs = oracle::readnotes(readnotes, &vmlinux).expect("readnotes on vmlinux");
    let (pvh, pvh_size) = theirs
        .iter()
        .find(|(k, _)| k == "PHYS32_ENTRY")
        .and_then(|(_, v)| oracle::readnotes_number(v))
        .expect("Debian's vmlinux has a PHYS32_ENTRY note");
    assert_eq!(json["pvh_entry"].as_u64(), Some(pvh));
    assert_eq!(pvh_size, 8, "Debian's PHYS32_ENTRY is an 8-byte note");
    assert_notes_match_readnotes(&json, &theirs, flavour);
    let build_id = oracle::readelf_notes(readelf, &vmlinux)
        .into_iter()
        .find(|n| n.owner == "GNU" && n.size == 20)
        .expect("build-id");
    assert_eq!(json["build_id"].as_str(), Some(build_id.desc_hex.as_str()));

    // Setup-header facts against od at boot.rst's offsets, file(1) and objdump.
    let version = od_u(&k.vmlinuz, 0x206, 2);
    assert_eq!(
        bz["protocol"].as_str().unwrap(),
        format!("{}.{:02}", version >> 8, version & 0xff)
    );
    assert_eq!(bz["init_size"].as_u64(), Some(od_u(&k.vmlinuz, 0x260, 4)));
    assert_eq!(
        bz["pref_address"].as_u64(),
        Some(od_u(&k.vmlinuz, 0x258, 4) | (od_u(&k.vmlinuz, 0x25c, 4) << 32))
    );
    let xlf = od_u(&k.vmlinuz, 0x236, 2);
    let names = bz["xloadflags"].as_array().unwrap();
    assert_eq!(
        names.len() as u32,
        xlf.count_ones(),
        "one name per xloadflags bit"
    );
    assert_eq!(names.iter().any(|n| n == "XLF_KERNEL_64"), xlf & 1 != 0);
    let file_out = sh(&format!("file -b '{}'", k.vmlinuz.display()));
    let kv = bz["kernel_version"].as_str().unwrap();
    assert!(
        file_out.contains(&format!("version {kv},")),
        "{file_out} vs {kv}"
    );
    let objdump = sh(&format!(
        "objdump -f '{}' 2>&1 || true",
        k.vmlinuz.display()
    ));
    assert_eq!(
        bz["efi_stub"].as_bool(),
        Some(objdump.contains("pei-")),
        "{objdump}"
    );

    // The text report names the same entry.
    let text = anyboot().arg("inspect").arg(&k.vmlinuz).output().unwrap();
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&format!("{pvh:#x}")), "{text}");
    let _ = std::fs::remove_file(&vmlinux);
}

#[test]
fn debian_cloud_kernel_lz4() {
    check_debian("cloud");
}

#[test]
fn debian_generic_kernel_xz() {
    check_debian("generic");
}

/// A vmlinux-shaped ELF: a 3 MiB PT_LOAD of mixed text and pseudo-random bytes, then the notes,
/// so a streaming reader must decode past megabytes (and several lz4/lzo blocks) to reach them.
fn big_pvh_elf() -> Vec<u8> {
    let mut data = Vec::with_capacity(3 << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while data.len() < 3 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x.is_multiple_of(3) {
            data.extend_from_slice(b"anyboot streams the payload; ");
        } else {
            data.extend_from_slice(&x.to_le_bytes()[..(x % 8) as usize]);
        }
    }
    build_elf(&ElfSpec {
        loads: vec![LoadSpec {
            paddr: 0x100_0000,
            vaddr: 0xffff_ffff_8100_0000,
            data,
            memsz: 4 << 20,
            align: 0x20_0000,
        }],
        note_segments: vec![vec![
            NoteSpec::xen_str(6, "linux"),
            NoteSpec::xen_str(5, "xen-3.0"),
            NoteSpec::xen(3, uint(0xffff_ffff_8000_0000, 8, false)),
            NoteSpec::xen(18, uint(0x100_0850, 8, false)),
        ]],
        ..ElfSpec::default()
    })
}

#[test]
fn every_compression_made_by_the_real_tools() {
    let cases: [(&str, &str, &[&str]); 7] = [
        ("gzip", "gzip", &["-n", "-9", "-c"]),
        ("bzip2", "bzip2", &["-9", "-c"]),
        ("lzma", "lzma", &["-9", "-c"]),
        (
            "xz",
            "xz",
            &[
                "--check=crc32",
                "--x86",
                "--lzma2=preset=6,dict=32MiB",
                "-c",
            ],
        ),
        ("lzo", "lzop", &["-9", "-c"]),
        ("lz4", "lz4", &["-l", "-9", "-c"]),
        ("zstd", "zstd", &["-19", "-c", "-q"]),
    ];
    let Some(readnotes) = tool_or_skip(READNOTES) else {
        return;
    };
    let elf = big_pvh_elf();
    let elf_path = scratch("big.elf");
    std::fs::write(&elf_path, &elf).unwrap();
    let theirs = oracle::readnotes(&readnotes, &elf_path).expect("readnotes on the ELF");
    for (name, tool, args) in cases {
        let Some(tool) = tool_or_skip(tool) else {
            continue;
        };
        let out = Command::new(&tool)
            .args(args)
            .arg(&elf_path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let img = bzimage(&BzSpec {
            payload: out.stdout,
            uncompressed_len: elf.len() as u32,
            ..BzSpec::default()
        });
        let path = scratch(&format!("bz-{name}"));
        std::fs::write(&path, &img).unwrap();
        let json = inspect_json(&path);
        assert_eq!(json["bzimage"]["compression"], name);
        assert_eq!(json["pvh_entry"], 0x100_0850, "{name}");
        assert_eq!(json["elf_class"], 64, "{name}");
        assert_notes_match_readnotes(&json, &theirs, name);
        let read = json["bzimage"]["decompressed_read"].as_u64().unwrap();
        assert!(
            read > 3 << 20 && read <= elf.len() as u64,
            "{name}: read {read}"
        );
        if name == "gzip" {
            // readnotes reads gzip bzImages itself (protocol >= 2.08).
            let direct = oracle::readnotes(&readnotes, &path).expect("readnotes on the bzImage");
            assert_notes_match_readnotes(&json, &direct, "gzip bzImage via readnotes");
        }
    }
}

/// Exit status 2 and exactly one line on stderr naming the file, never a panic.
fn assert_one_line_error(path: &Path, expect: &str) {
    for args in [&["inspect"][..], &["inspect", "--json"][..]] {
        let out = anyboot().args(args).arg(path).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", path.display());
        assert!(out.stdout.is_empty());
        assert_eq!(err.lines().count(), 1, "one line expected: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            err.starts_with(&format!("anyboot: {}: ", path.display())),
            "the file must be named: {err}"
        );
        assert!(err.contains(expect), "expected {expect:?} in: {err}");
    }
}

#[test]
fn bad_images_get_one_line_and_status_2() {
    let empty = scratch("empty");
    std::fs::write(&empty, b"").unwrap();
    assert_one_line_error(&empty, "empty file");
    assert_one_line_error(Path::new("/dev/null"), "empty file");
    assert_one_line_error(&scratch("does-not-exist"), "cannot read the image");

    let garbage = scratch("garbage");
    std::fs::write(&garbage, [0x00, 0x11, 0x22, 0x33, 0x44].repeat(100)).unwrap();
    assert_one_line_error(&garbage, "00 11 22 33 at offset 0x0");

    let good = bzimage(&BzSpec {
        payload: vec![0u8; 64],
        uncompressed_len: 1000,
        ..BzSpec::default()
    });
    let trunc = scratch("truncated-header");
    std::fs::write(&trunc, &good[..0x240]).unwrap();
    assert_one_line_error(
        &trunc,
        "truncated setup header: needs 0x26c bytes, file has 0x240",
    );
    std::fs::write(&trunc, &good[..0x1f0]).unwrap();
    assert_one_line_error(
        &trunc,
        "truncated setup header: needs 0x26c bytes, file has 0x1f0",
    );

    let bad_magic = scratch("bad-magic");
    let mut img = bzimage(&BzSpec {
        payload: vec![0x00, 0x11, 0x22, 0x33, 0x44, 0x55],
        uncompressed_len: 1000,
        ..BzSpec::default()
    });
    std::fs::write(&bad_magic, &img).unwrap();
    let pm = 4 * 512 + 0x2cc; // (setup_sects 3 + 1) sectors + payload_offset
    assert_one_line_error(
        &bad_magic,
        &format!("unknown payload magic 00 11 22 33 at offset {pm:#x}"),
    );
    // payload_length pointing past the end of the file
    img[0x24c..0x250].copy_from_slice(&0x10_0000u32.to_le_bytes());
    std::fs::write(&bad_magic, &img).unwrap();
    assert_one_line_error(&bad_magic, "extends past the end of the file");

    // A gzip header followed by a deflate block of the reserved type 3.
    let corrupt = scratch("corrupt-gzip");
    let mut payload = vec![0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0x03, 0x07];
    payload.extend_from_slice(&[0xff; 64]);
    std::fs::write(
        &corrupt,
        bzimage(&BzSpec {
            payload,
            uncompressed_len: 1 << 20,
            ..BzSpec::default()
        }),
    )
    .unwrap();
    assert_one_line_error(
        &corrupt,
        &format!("payload at file offset {pm:#x}: corrupt gzip payload after 0 bytes of output"),
    );

    let arm64 = scratch("pe-no-hdrs");
    let mut pe = vec![0u8; 0x1000];
    pe[..2].copy_from_slice(b"MZ");
    std::fs::write(&arm64, &pe).unwrap();
    assert_one_line_error(&arm64, "not an x86 bzImage");

    let short_pvh = scratch("two-byte-pvh");
    std::fs::write(
        &short_pvh,
        build_elf(&ElfSpec {
            note_segments: vec![vec![NoteSpec::xen(18, vec![0x00, 0x10])]],
            ..ElfSpec::default()
        }),
    )
    .unwrap();
    assert_one_line_error(&short_pvh, "PHYS32_ENTRY (type 18) at offset 0x");
}

#[test]
fn json_schema_keys_and_types() {
    let path = scratch("schema.elf");
    std::fs::write(&path, big_pvh_elf()).unwrap();
    let j = inspect_json(&path);
    for key in [
        "file",
        "schema_version",
        "format",
        "pvh_entry",
        "elf_entry",
        "elf_class",
        "xen_notes",
        "bzimage",
        "multiboot",
        "entry_points",
    ] {
        assert!(j.get(key).is_some(), "missing top-level key {key}");
    }
    assert_eq!(j["format"], "elf");
    assert!(j["bzimage"].is_null() && j["multiboot"].is_null());
    let n = &j["xen_notes"][0];
    assert!(n["type"].is_u64() && n["name"].is_string() && !n["value"].is_null());
    let e = &j["entry_points"][0];
    assert_eq!(e["protocol"], "pvh");
}

/// Real non-Linux subjects from Debian packages: GRUB's Xen images (a PVH ELF32 with a 4-byte
/// PHYS32_ENTRY, and PV images) against readnotes; the Xen hypervisor (a gzip'd ELF32 with
/// multiboot v1 and multiboot2 headers) against GRUB's own `grub-file` and readelf.
#[test]
fn grub_and_xen_images_from_debian() {
    let tools = ["readelf", READNOTES, "grub-file", "zcat"];
    let Some(found) = tools_or_skip(&tools) else {
        return;
    };
    let (readelf, readnotes, grub_file) = (&found[0], &found[1], &found[2]);
    let grub = [
        "/usr/lib/grub-xen/grub-i386-xen_pvh.bin",
        "/usr/lib/grub-xen/grub-i386-xen.bin",
        "/usr/lib/grub-xen/grub-x86_64-xen.bin",
    ];
    for path in grub.iter().map(Path::new) {
        let Some(path) = oracle::data_or_skip(path.to_str().unwrap()) else {
            return;
        };
        let json = inspect_json(&path);
        let theirs = oracle::readnotes(readnotes, &path).expect("readnotes");
        assert_notes_match_readnotes(&json, &theirs, &path.display().to_string());
        let (class, entry, _) = oracle::readelf_header(readelf, &path);
        assert_eq!(json["elf_class"].as_u64(), Some(u64::from(class)));
        assert_eq!(json["elf_entry"].as_u64(), Some(entry));
        let pvh = theirs.iter().find(|(k, _)| k == "PHYS32_ENTRY");
        assert_eq!(
            json["pvh_entry"].is_null(),
            pvh.is_none(),
            "{}",
            path.display()
        );
    }
    let pvh = inspect_json(Path::new(grub[0]));
    assert_eq!(pvh["elf_class"], 32);
    assert_eq!(
        pvh["xen_notes"][0]["desc_size"], 4,
        "GRUB's PVH note is a 4-byte .long"
    );

    let Some(xen_gz) = oracle::data_or_skip("/boot/xen-4.17-amd64.gz") else {
        return;
    };
    // The compressed file gets a precise error...
    assert_one_line_error(&xen_gz, "gzip-compressed file at offset 0x0");
    // ...and the decompressed hypervisor is a multiboot ELF32.
    let xen = scratch("xen-hypervisor");
    sh(&format!(
        "zcat '{}' > '{}'",
        xen_gz.display(),
        xen.display()
    ));
    let json = inspect_json(&xen);
    let grub_says = |flag: &str| {
        Command::new(grub_file)
            .arg(flag)
            .arg(&xen)
            .status()
            .unwrap()
            .success()
    };
    assert_eq!(
        !json["multiboot"].is_null(),
        grub_says("--is-x86-multiboot")
    );
    assert_eq!(
        !json["multiboot2"].is_null(),
        grub_says("--is-x86-multiboot2")
    );
    assert!(
        grub_says("--is-x86-multiboot"),
        "Debian's Xen is a multiboot image"
    );
    let (class, entry, _) = oracle::readelf_header(readelf, &xen);
    assert_eq!(json["elf_class"].as_u64(), Some(u64::from(class)));
    let mb_entry = json["entry_points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["protocol"] == "multiboot")
        .expect("a multiboot entry point");
    assert_eq!(mb_entry["address"].as_u64(), Some(entry));
    // GRUB refuses a flat image whose checksum is off by one; so does anyboot.
    let mut bytes = std::fs::read(&xen).unwrap();
    let off = json["multiboot"]["offset"].as_u64().unwrap() as usize;
    bytes[off + 8] ^= 1;
    let broken = scratch("xen-bad-checksum");
    std::fs::write(&broken, &bytes).unwrap();
    let json = inspect_json(&broken);
    assert!(json["multiboot"].is_null());
    assert!(
        !Command::new(grub_file)
            .arg("--is-x86-multiboot")
            .arg(&broken)
            .status()
            .unwrap()
            .success()
    );
}
