//! One regression test per fuzzing finding (docs/ROBUSTNESS.md lists them with the target that
//! found each). Every test drives the `anyboot` binary, as a user would, and checks the
//! documented outcome: exit status 2 and one line naming the rule, or an emitted value that
//! reads back unchanged by the consumer's rules.

mod cli;

use std::process::Command;

use anyboot_fixtures::{
    ElfSpec, LoadSpec, NoteSpec, build_elf, multiboot_flat, program_header, scratch, uint,
};
use backends::readback::{ch_argv, ch_options, shell_words};
use cli::{anyboot, refused};

fn file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = scratch(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn pvh_notes() -> Vec<Vec<NoteSpec>> {
    vec![vec![NoteSpec::xen(18, uint(0x100_0000, 4, false))]]
}

/// elf_notes: a section name holding a line feed made the note error two lines. The name is
/// now printed escaped.
#[test]
fn section_name_with_a_newline_stays_on_one_line() {
    let mut img = build_elf(&ElfSpec {
        note_segments: pvh_notes(),
        section_only_notes: vec![NoteSpec::new("Evil", 1, b"x".to_vec())],
        ..Default::default()
    });
    let name = img.windows(10).position(|w| w == b".note.only").unwrap();
    img[name + 5] = b'\n';
    // Break the section's note: its namesz (the first word of the section-only notes) huge.
    let note = img.windows(8).position(|w| w == b"Evil\0\0\0\0").unwrap() - 12;
    img[note..note + 4].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let k = file("evil-section.elf", &img);
    refused(&["inspect"], &k, &["section", "(\".note\\nonly\")"]);
}

/// plan: a PT_LOAD segment whose file bytes run past the end of the file was planned (the
/// KVM backend only failed when reading it). Now refused naming the segment and p_offset.
#[test]
fn pt_load_past_the_end_of_the_file_is_refused() {
    let mut spec = ElfSpec {
        note_segments: pvh_notes(),
        ..Default::default()
    };
    spec.loads = vec![LoadSpec {
        paddr: 0x100_0000,
        vaddr: 0x100_0000,
        data: vec![0xf4; 64],
        memsz: 0x2000,
        align: 0x1000,
    }];
    let mut img = build_elf(&spec);
    // p_filesz, at +32 of the PT_LOAD's 56-byte program header.
    let load = program_header(&img, 1).expect("a PT_LOAD header");
    img[load + 32..load + 40].copy_from_slice(&0x1_0000u64.to_le_bytes());
    let k = file("load-past-eof.elf", &img);
    refused(
        &["plan"],
        &k,
        &[
            "PT_LOAD segment 0",
            "p_filesz 0x2000",
            "past the end of the ELF",
        ],
    );
    refused(&["run", "--timeout", "1"], &k, &["PT_LOAD segment 0"]);
}

/// multiboot: an a.out kludge whose load_end_addr asks for more bytes than the file has was
/// planned with the load silently cut short (QEMU refuses it). Now refused.
#[test]
fn multiboot_load_end_past_the_file_is_refused() {
    let mut img = multiboot_flat(0x40, 0x1000, 0);
    // load_end_addr (header + 20) one page past the file's end; fix the checksum-free field.
    let end = 0x10_0000u32 + 0x2000;
    img[0x40 + 20..0x40 + 24].copy_from_slice(&end.to_le_bytes());
    let k = file("mb-load-end.bin", &img);
    refused(
        &["plan", "--protocol", "multiboot"],
        &k,
        &[
            "load_end_addr 0x102000",
            "past the end of the file at 0x1000",
        ],
    );
}

/// plan: a bzImage whose setup_sects put the protected-mode kernel past the end of the file
/// was planned with an empty kernel segment. Now refused naming setup_sects.
#[test]
fn bzimage_setup_past_the_file_is_refused() {
    let mut img = anyboot_fixtures::bzimage(&anyboot_fixtures::BzSpec::default());
    img.truncate(0x800 - 0x10);
    // No payload fields (as before protocol 2.08), so inspect itself has nothing to refuse.
    img[0x248..0x250].fill(0);
    // setup_sects = 3 puts the protected-mode part at 0x800; nothing is there any more.
    let k = file("bz-short.bin", &img);
    refused(
        &["plan", "--protocol", "linux"],
        &k,
        &["setup_sects at 0x1f1", "0x800"],
    );
}

/// emit_cloud_hypervisor: a disk path with a comma was refused though Cloud Hypervisor takes
/// it quoted; a path with `"`, `[` or `]`, or blanks at either end, was written and then
/// mangled by its option parser. Commas are now quoted, the others refused; a value starting
/// with `-` is attached with `=` so clap does not read it as a flag.
#[test]
fn cloud_hypervisor_disk_paths_read_back() {
    let k = file(
        "ch-pvh.elf",
        &build_elf(&ElfSpec {
            note_segments: pvh_notes(),
            ..Default::default()
        }),
    );
    let out = anyboot(
        &[
            "emit",
            "cloud-hypervisor",
            "--disk",
            "/srv/a,b.img",
            "--cmdline",
            "-s x",
            "--format",
            "json",
        ],
        &k,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let argv: Vec<String> = j
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let flags = ch_argv(&argv).unwrap();
    let get = |f: &str| {
        flags
            .iter()
            .find(|(n, _)| n == f)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(
        ch_options(&get("--disk")).unwrap(),
        [("path".to_owned(), "/srv/a,b.img".to_owned())]
    );
    assert_eq!(get("--cmdline"), "-s x");
    for bad in ["/srv/a\"b.img", "/srv/[a", " /srv/a"] {
        refused(
            &["emit", "cloud-hypervisor", "--disk", bad],
            &k,
            &["cannot be passed to --disk"],
        );
    }
}

/// emit_qemu: a multiboot module path with a space was written to -initrd, where QEMU's
/// multiboot loader takes the file name only up to the space. Now refused.
#[test]
fn qemu_multiboot_module_with_a_space_is_refused() {
    let k = file("mb.bin", &multiboot_flat(0x40, 0x2000, 0));
    let initrd = file("mod with space.img", b"module");
    refused(
        &["emit", "qemu", "--initrd", initrd.to_str().unwrap()],
        &k,
        &["multiboot module path with a space"],
    );
    // Without a space the path reads back whole, commas included.
    let initrd = file("mod,comma.img", b"module");
    let out = anyboot(&["emit", "qemu", "--initrd", initrd.to_str().unwrap()], &k);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let words = shell_words(String::from_utf8(out.stdout).unwrap().trim_end()).unwrap();
    let at = words.iter().position(|w| w == "-initrd").unwrap();
    let mods = backends::readback::qemu_multiboot_modules(&words[at + 1]);
    assert_eq!(mods.len(), 1);
    assert_eq!(mods[0].0, initrd.to_str().unwrap());
}

/// Review: strings from the image (here a GUEST_OS note and a note owner) were printed raw by
/// `inspect`, so a hostile kernel could send terminal escape sequences or fake report lines.
/// They are now shown with control characters escaped.
#[test]
fn inspect_escapes_control_characters_from_the_image() {
    let k = file(
        "escapes.elf",
        &build_elf(&ElfSpec {
            note_segments: vec![vec![
                NoteSpec::xen(18, uint(0x100_0000, 4, false)),
                NoteSpec::xen_str(6, "linux\u{1b}]0;owned\u{7}\nentry points"),
                NoteSpec::new("Ev\u{1b}[2Jil", 1, b"x".to_vec()),
            ]],
            ..Default::default()
        }),
    );
    let out = anyboot(&["inspect"], &k);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text}"
    );
    assert!(
        text.contains("linux\\u{1b}]0;owned\\u{7}\\nentry points"),
        "{text}"
    );
    assert!(text.contains("Ev\\u{1b}[2Jil"), "{text}");
    assert_eq!(
        text.lines().filter(|l| *l == "entry points").count(),
        1,
        "the note cannot fake the heading: {text}"
    );
}

/// Review: a relative disk path whose first `:` comes before any `/` (`vm:1.img`, `json:{...}`)
/// reads as a protocol to QEMU's block layer. anyboot now writes it as `./vm:1.img`; qemu-img
/// (the same block layer) is the oracle for both spellings.
#[test]
fn qemu_disk_path_with_a_colon_is_not_a_protocol() {
    let Some(qemu_img) = anyboot_fixtures::kernels::tool_or_skip("qemu-img") else {
        return;
    };
    let dir = scratch("colon-disk");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("vm:1.img"), vec![0u8; 4096]).unwrap();
    let k = file(
        "colon.elf",
        &build_elf(&ElfSpec {
            note_segments: pvh_notes(),
            ..Default::default()
        }),
    );
    let out = Command::new(assert_cmd::cargo::cargo_bin!("anyboot"))
        .current_dir(&dir)
        .args(["emit", "qemu", "--format", "json", "--disk", "vm:1.img"])
        .arg(&k)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let argv: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    let drive = &argv[argv.iter().position(|a| a == "-drive").unwrap() + 1];
    let opts = backends::readback::qemu_opts(drive);
    let file = &opts.iter().find(|(k, _)| k == "file").unwrap().1;
    assert_eq!(file, "./vm:1.img");
    let info = |name: &str| {
        Command::new(&qemu_img)
            .current_dir(&dir)
            .args(["info", "-f", "raw", name])
            .output()
            .unwrap()
    };
    let bare = info("vm:1.img");
    assert!(!bare.status.success(), "qemu-img takes vm: for a protocol");
    assert!(
        String::from_utf8_lossy(&bare.stderr).contains("protocol"),
        "{bare:?}"
    );
    assert!(info(file).status.success(), "qemu-img opens ./vm:1.img");
}
