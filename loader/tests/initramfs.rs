//! `loader::initramfs` against GNU cpio (`cpio -t -v` lists what we wrote, `cpio -i -d`
//! extracts it and the files are compared byte for byte, with their modes) and against a
//! reader written here from the kernel's `buffer-format.rst`, which also checks what cpio
//! tolerates: 4-byte alignment, unique inode numbers, nlink, mtime 0, the trailer. The Linux
//! unpacker booting `init_archive` is the end-to-end oracle (`anyboot run --init`).

use std::collections::BTreeSet;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};

use anyboot_fixtures::kernels::tool_or_skip;
use anyboot_fixtures::scratch;
use loader::initramfs::{MAX_PATH_LEN, Newc, NewcError, init_archive};

/// One entry as read back: (name, the 13 header fields, data).
#[derive(Debug)]
struct Entry {
    name: String,
    ino: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    mtime: u32,
    dev: (u32, u32),
    rdev: (u32, u32),
    check: u32,
    data: Vec<u8>,
}

/// Read a newc archive by the rules of Documentation/driver-api/early-userspace/
/// buffer-format.rst, asserting each: "070701", 13 fields of 8 hex digits, the name with its
/// NUL padded so that header + name ends 4-byte aligned, the data padded to 4, `TRAILER!!!`
/// last and nothing after it. Returns the entries before the trailer.
fn read_newc(a: &[u8]) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut off = 0;
    loop {
        assert_eq!(off % 4, 0, "entry at {off} not 4-byte aligned");
        let h = &a[off..off + 110];
        assert_eq!(&h[..6], b"070701", "magic at {off}");
        let f: Vec<u32> = (0..13)
            .map(|i| {
                let digits = std::str::from_utf8(&h[6 + 8 * i..14 + 8 * i]).unwrap();
                assert!(
                    digits.bytes().all(|b| b.is_ascii_hexdigit()),
                    "field {i}: {digits:?}"
                );
                u32::from_str_radix(digits, 16).unwrap()
            })
            .collect();
        let namesize = f[11] as usize;
        let name_bytes = &a[off + 110..off + 110 + namesize];
        assert_eq!(name_bytes.last(), Some(&0), "name ends with its NUL");
        assert!(!name_bytes[..namesize - 1].contains(&0), "one NUL only");
        let name = String::from_utf8(name_bytes[..namesize - 1].to_vec()).unwrap();
        let data_start = (off + 110 + namesize).next_multiple_of(4);
        assert!(
            a[off + 110 + namesize..data_start].iter().all(|&b| b == 0),
            "name padding is zeros"
        );
        let size = f[6] as usize;
        let data = a[data_start..data_start + size].to_vec();
        let next = (data_start + size).next_multiple_of(4);
        assert!(
            a[data_start + size..next].iter().all(|&b| b == 0),
            "data padding is zeros"
        );
        off = next;
        if name == "TRAILER!!!" {
            assert_eq!(off, a.len(), "nothing after the trailer");
            assert_eq!(f[6], 0);
            return out;
        }
        out.push(Entry {
            name,
            ino: f[0],
            mode: f[1],
            uid: f[2],
            gid: f[3],
            nlink: f[4],
            mtime: f[5],
            dev: (f[7], f[8]),
            rdev: (f[9], f[10]),
            check: f[12],
            data,
        });
    }
}

/// The conventions every entry follows.
fn check_conventions(entries: &[Entry]) {
    let inos: BTreeSet<u32> = entries.iter().map(|e| e.ino).collect();
    assert_eq!(inos.len(), entries.len(), "inode numbers are unique");
    assert!(!inos.contains(&0));
    for e in entries {
        assert_eq!(
            (e.uid, e.gid, e.mtime, e.dev, e.check),
            (0, 0, 0, (0, 0), 0)
        );
        let is_dir = e.mode & 0o170_000 == 0o040_000;
        assert_eq!(e.nlink, if is_dir { 2 } else { 1 }, "{}", e.name);
        assert!(!e.name.starts_with('/'), "{}", e.name);
    }
}

/// Run GNU cpio with `input` on stdin in `dir`; stdout.
fn cpio(exe: &Path, args: &[&str], dir: &Path, input: &[u8]) -> String {
    let mut child = Command::new(exe)
        .args(args)
        .current_dir(dir)
        .env("TZ", "UTC")
        .env("LC_ALL", "C")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cpio {args:?}: {stderr}");
    assert!(
        !stderr.contains("warning") && !stderr.contains("junk"),
        "cpio {args:?} complained: {stderr}"
    );
    String::from_utf8(out.stdout).unwrap()
}

fn mode_of(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode()
}

/// A fake static binary of awkward length (not a multiple of 4).
fn fake_init() -> Vec<u8> {
    let mut b = b"\x7fELF\x02\x01\x01".to_vec();
    b.extend((0..10_001u32).map(|i| u8::try_from(i * 7 % 251).unwrap()));
    b
}

#[test]
fn init_archive_by_the_format() {
    let init = fake_init();
    let a = init_archive(&init).unwrap();
    let entries = read_newc(&a);
    check_conventions(&entries);
    let got: Vec<(&str, u32, (u32, u32), usize)> = entries
        .iter()
        .map(|e| (e.name.as_str(), e.mode, e.rdev, e.data.len()))
        .collect();
    assert_eq!(
        got,
        [
            ("dev", 0o040_755, (0, 0), 0),
            ("dev/console", 0o020_600, (5, 1), 0),
            ("proc", 0o040_755, (0, 0), 0),
            ("sys", 0o040_755, (0, 0), 0),
            ("tmp", 0o040_755, (0, 0), 0),
            ("init", 0o100_755, (0, 0), init.len()),
        ]
    );
    assert_eq!(entries[5].data, init);
    // Reproducible: the same input gives the same bytes.
    assert_eq!(init_archive(&init).unwrap(), a);
}

#[test]
fn gnu_cpio_lists_init_archive() {
    let Some(exe) = tool_or_skip("cpio") else {
        return;
    };
    let init = fake_init();
    let a = init_archive(&init).unwrap();
    let dir = scratch("list");
    let dir = dir.parent().unwrap();
    let list = cpio(&exe, &["-t", "-v", "--numeric-uid-gid"], dir, &a);
    let rows: Vec<Vec<&str>> = list
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let size = init.len().to_string();
    let want: Vec<Vec<&str>> = vec![
        vec!["drwxr-xr-x", "2", "0", "0", "0", "Jan", "1", "1970", "dev"],
        vec![
            "crw-------",
            "1",
            "0",
            "0",
            "5,",
            "1",
            "Jan",
            "1",
            "1970",
            "dev/console",
        ],
        vec!["drwxr-xr-x", "2", "0", "0", "0", "Jan", "1", "1970", "proc"],
        vec!["drwxr-xr-x", "2", "0", "0", "0", "Jan", "1", "1970", "sys"],
        vec!["drwxr-xr-x", "2", "0", "0", "0", "Jan", "1", "1970", "tmp"],
        vec![
            "-rwxr-xr-x",
            "1",
            "0",
            "0",
            &size,
            "Jan",
            "1",
            "1970",
            "init",
        ],
    ];
    assert_eq!(rows, want, "cpio -tv said:\n{list}");
}

#[test]
fn gnu_cpio_extracts_init_archive() {
    let Some(exe) = tool_or_skip("cpio") else {
        return;
    };
    let init = fake_init();
    let a = init_archive(&init).unwrap();
    let out = scratch("extract");
    fs::create_dir(&out).unwrap();
    // Everything but the device node (mknod needs privileges outside CI).
    cpio(
        &exe,
        &[
            "-i",
            "-d",
            "--quiet",
            "--no-absolute-filenames",
            "-f",
            "dev/console",
        ],
        &out,
        &a,
    );
    assert_eq!(fs::read(out.join("init")).unwrap(), init);
    assert_eq!(mode_of(&out.join("init")), 0o100_755);
    for d in ["dev", "proc", "sys", "tmp"] {
        assert_eq!(mode_of(&out.join(d)), 0o040_755, "{d}");
    }
    let mut names: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["dev", "init", "proc", "sys", "tmp"]);
    fs::remove_dir_all(&out).unwrap();
}

#[test]
fn every_padding_case_round_trips_through_gnu_cpio() {
    // Name lengths 1..=8 and data lengths 0..=8 cover every residue modulo 4 of both paddings.
    let mut a = Newc::new();
    a.dir("/d", 0o700).unwrap();
    let mut files = Vec::new();
    for name_len in 1..=8 {
        for data_len in 0..=8u8 {
            let name = format!("d/{}{data_len}", "n".repeat(name_len));
            let data: Vec<u8> = (0..data_len).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
            let mode = [0o644, 0o600, 0o755, 0o4755][usize::from(data_len) % 4];
            a.file(&name, mode, &data).unwrap();
            files.push((name, mode, data));
        }
    }
    a.symlink("d/link", "../d/n0").unwrap();
    let archive = a.finish();

    let entries = read_newc(&archive);
    check_conventions(&entries);
    assert_eq!(entries.len(), files.len() + 2);
    assert_eq!(entries.last().unwrap().mode, 0o120_777);
    assert_eq!(entries.last().unwrap().data, b"../d/n0");

    let Some(exe) = tool_or_skip("cpio") else {
        return;
    };
    let out = scratch("padding");
    fs::create_dir(&out).unwrap();
    cpio(
        &exe,
        &["-i", "-d", "--quiet", "--no-absolute-filenames"],
        &out,
        &archive,
    );
    assert_eq!(mode_of(&out.join("d")), 0o040_700);
    for (name, mode, data) in &files {
        assert_eq!(&fs::read(out.join(name)).unwrap(), data, "{name}");
        assert_eq!(mode_of(&out.join(name)), 0o100_000 | mode, "{name}");
    }
    assert_eq!(
        fs::read_link(out.join("d/link")).unwrap(),
        Path::new("../d/n0")
    );
    fs::remove_dir_all(&out).unwrap();
}

#[test]
fn longest_path_is_accepted_and_one_more_byte_refused() {
    // 15 directories of 255 bytes plus a file name: exactly MAX_PATH_LEN bytes.
    let comp = "c".repeat(255);
    let mut a = Newc::new();
    let mut path = String::new();
    for _ in 0..15 {
        path.push_str(&comp);
        a.dir(&path, 0o755).unwrap();
        path.push('/');
    }
    let file = "f".repeat(MAX_PATH_LEN - path.len());
    path.push_str(&file);
    assert_eq!(path.len(), MAX_PATH_LEN);
    a.file(&path, 0o644, b"deep").unwrap();
    // A leading '/' is dropped before the length is counted.
    a.file(&format!("/{path}"), 0o644, b"deep").unwrap();
    let long = format!("{path}x");
    assert_eq!(
        a.file(&long, 0o644, b"").unwrap_err(),
        NewcError::PathTooLong {
            len: MAX_PATH_LEN + 1
        }
    );
    let archive = a.finish();
    let entries = read_newc(&archive);
    assert_eq!(entries.len(), 17, "the refused entry left nothing behind");
    assert_eq!(entries[15].name, path);

    let Some(exe) = tool_or_skip("cpio") else {
        return;
    };
    let dir = scratch("long");
    let dir = dir.parent().unwrap();
    let list = cpio(&exe, &["-t", "--quiet"], dir, &archive);
    assert_eq!(list.lines().nth(15), Some(path.as_str()));
}

#[test]
fn refusals() {
    let mut a = Newc::new();
    for p in ["", "/", "///"] {
        assert_eq!(a.dir(p, 0o755).unwrap_err(), NewcError::EmptyPath, "{p:?}");
    }
    assert_eq!(
        a.file("bad\0name", 0o644, b"").unwrap_err(),
        NewcError::NulInPath {
            path: "bad\0name".into()
        }
    );
    assert_eq!(
        a.char_dev("dev/x", 0o10_600, 1, 3).unwrap_err(),
        NewcError::BadMode {
            path: "dev/x".into(),
            mode: 0o10_600
        }
    );
    assert_eq!(
        a.file("f", 0o100_644, b"").unwrap_err(),
        NewcError::BadMode {
            path: "f".into(),
            mode: 0o100_644
        },
        "the file type comes from the method, not the mode"
    );
    for target in ["", "a\0b", &"t".repeat(MAX_PATH_LEN + 1)] {
        assert_eq!(
            a.symlink("l", target).unwrap_err(),
            NewcError::BadSymlinkTarget {
                path: "l".into(),
                target: target.into()
            }
        );
    }
    // Nothing was written for the refused entries: the archive is just the trailer.
    let archive = a.finish();
    assert!(read_newc(&archive).is_empty());
    assert_eq!(archive.len(), 124, "110 + \"TRAILER!!!\\0\" padded to 4");
    // Messages name the rule.
    assert_eq!(
        NewcError::NulInPath {
            path: "a\0b".into()
        }
        .to_string(),
        "cpio path \"a\\0b\" contains a NUL byte"
    );
}

#[test]
fn same_bytes_as_the_fixtures_test_writer() {
    // tests/fixtures has its own newc writer (it builds the busybox initramfs that boots
    // Debian's kernel under QEMU); both follow the same conventions, so the same entries give
    // the same bytes, and the fixtures could move to this writer.
    use anyboot_fixtures::initramfs::Cpio;
    let init = fake_init();
    let mut theirs = Cpio::new();
    theirs
        .dir("dev", 0o755)
        .char_dev("dev/console", 0o600, 5, 1)
        .dir("proc", 0o755)
        .dir("sys", 0o755)
        .dir("tmp", 0o755)
        .file("init", 0o755, &init);
    assert_eq!(init_archive(&init).unwrap(), theirs.finish());

    let mut ours = Newc::new();
    ours.dir("bin", 0o755)
        .unwrap()
        .file("bin/busybox", 0o755, b"\x7fELF")
        .unwrap()
        .symlink("bin/sh", "busybox")
        .unwrap();
    let mut theirs = Cpio::new();
    theirs
        .dir("bin", 0o755)
        .file("bin/busybox", 0o755, b"\x7fELF")
        .symlink("bin/sh", "busybox");
    assert_eq!(ours.finish(), theirs.finish());
}
