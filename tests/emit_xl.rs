//! `anyboot emit xl`, parsed back by Xen's own config parser (libxlutil, through the C harness
//! in `tests/fixtures/c/xlcfg_dump.c`): every value must come back as asked, byte for byte,
//! including hostile strings in the command line, the name and the paths.

use std::path::Path;
use std::process::Command;

use anyboot_fixtures::kernels::kernel_or_skip;
use anyboot_fixtures::oracle::data_or_skip;
use anyboot_fixtures::scratch;
use anyboot_fixtures::xlcfg::{XlKind, xl_parse, xlcfg_checker};

fn emit(kernel: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(assert_cmd::cargo::cargo_bin!("anyboot"))
        .args(["emit", "xl"])
        .arg(kernel)
        .args(args)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        assert_eq!(out.status.code(), Some(2));
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

const KEYS: [(&str, XlKind); 10] = [
    ("name", XlKind::Str),
    ("type", XlKind::Str),
    ("kernel", XlKind::Str),
    ("ramdisk", XlKind::Str),
    ("cmdline", XlKind::Str),
    ("memory", XlKind::Int),
    ("vcpus", XlKind::Int),
    ("disk", XlKind::Disk),
    ("on_poweroff", XlKind::Str),
    ("on_reboot", XlKind::Str),
];

#[test]
fn debian_kernel_with_hostile_strings_round_trips_through_libxlutil() {
    let Some(k) = kernel_or_skip("cloud") else {
        return;
    };
    if xlcfg_checker().is_none() {
        return;
    }
    let cmdline =
        r#"console=hvc0 a="b c" d='e' back\slash, comma $HOME tab	é 日本 #not-a-comment ;x"#;
    let initrd = scratch(r#"in'it "rd" ,$x é.img"#);
    std::fs::write(&initrd, b"initrd").unwrap();
    let disk1 = scratch("disk, with comma.img");
    let disk2 = scratch(r#"ro "disk" \ 'two'.img"#);
    let name = r#"vm "one" 'x' \y"#;
    let cfg = emit(
        &k.vmlinuz,
        &[
            "--cmdline",
            cmdline,
            "--initrd",
            initrd.to_str().unwrap(),
            "--disk",
            disk1.to_str().unwrap(),
            "--disk",
            &format!("{},ro", disk2.display()),
            "--mem",
            "384",
            "--cpus",
            "3",
            "--name",
            name,
        ],
    )
    .unwrap();
    assert!(cfg.ends_with('\n') && !cfg.contains('\r'));
    let path = scratch("vm.cfg");
    std::fs::write(&path, &cfg).unwrap();
    let got = xl_parse(&path, &KEYS).unwrap_or_else(|e| panic!("libxlutil refused:\n{cfg}\n{e}"));
    assert_eq!(got.string("name"), Some(name.as_bytes()));
    assert_eq!(
        got.string("type"),
        Some(&b"pvh"[..]),
        "Debian's kernel is PVH-capable"
    );
    assert_eq!(
        got.string("kernel"),
        Some(k.vmlinuz.to_str().unwrap().as_bytes())
    );
    assert_eq!(
        got.string("ramdisk"),
        Some(initrd.to_str().unwrap().as_bytes())
    );
    assert_eq!(got.string("cmdline"), Some(cmdline.as_bytes()));
    assert_eq!(got.int("memory"), Some(384));
    assert_eq!(got.int("vcpus"), Some(3));
    assert_eq!(got.string("on_poweroff"), Some(&b"destroy"[..]));
    let disks = got.disks("disk").expect("disk list");
    assert_eq!(disks.len(), 2);
    for (item, (path, rw, vdev)) in disks
        .iter()
        .zip([(&disk1, true, "xvda"), (&disk2, false, "xvdb")])
    {
        let parsed = item.parsed.clone().unwrap().unwrap();
        assert_eq!(
            parsed.pdev_path.as_deref(),
            Some(path.to_str().unwrap().as_bytes())
        );
        assert_eq!(parsed.readwrite, rw);
        assert_eq!(parsed.vdev.as_deref(), Some(vdev.as_bytes()));
        assert_eq!(parsed.format, "raw");
    }
}

#[test]
fn types_and_refusals() {
    if xlcfg_checker().is_none() {
        return;
    }
    // Xen PV only: GRUB's x86_64-xen image.
    if let Some(pv) = data_or_skip("/usr/lib/grub-xen/grub-x86_64-xen.bin") {
        let cfg = emit(&pv, &[]).unwrap();
        let path = scratch("pv.cfg");
        std::fs::write(&path, &cfg).unwrap();
        let got = xl_parse(&path, &KEYS).unwrap();
        assert_eq!(got.string("type"), Some(&b"pv"[..]));
    }
    // PVH ELF32: GRUB's i386-xen_pvh image.
    if let Some(pvh) = data_or_skip("/usr/lib/grub-xen/grub-i386-xen_pvh.bin") {
        let cfg = emit(&pvh, &[]).unwrap();
        assert!(cfg.contains("type = \"pvh\"\n"), "{cfg}");
    }
    // A multiboot-only ELF (Debian's Xen hypervisor): refused with the reason.
    if let Some(gz) = data_or_skip("/boot/xen-4.17-amd64.gz") {
        let xen = scratch("xen");
        let st = Command::new("sh")
            .arg("-c")
            .arg(format!("zcat '{}' > '{}'", gz.display(), xen.display()))
            .status()
            .unwrap();
        assert!(st.success());
        let err = emit(&xen, &[]).unwrap_err();
        assert!(
            err.contains("Xen cannot boot this kernel") && err.contains("neither"),
            "{err}"
        );
    }
    // What xl.cfg cannot carry is refused, not mangled.
    if let Some(pvh) = data_or_skip("/usr/lib/grub-xen/grub-i386-xen_pvh.bin") {
        let err = emit(&pvh, &["--cmdline", "a\u{1}b"]).unwrap_err();
        assert!(err.contains("control character"), "{err}");
    }
}

/// A deterministic generator of hostile strings (xorshift; no dependency on the code under
/// test): quotes, backslashes, line breaks, tabs, list and comment punctuation, non-ASCII.
struct Hostile(u64);

impl Hostile {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn string(&mut self) -> String {
        const ALPHABET: [&str; 24] = [
            "a", "Z", "0", " ", "\"", "'", "\\", "\n", "\r", "\t", ",", "=", "#", ";", "[", "]",
            "$", "é", "日", "🦀", "\u{85}", "target=", "\\n", "/",
        ];
        let len = self.next() % 24;
        (0..len)
            .map(|_| ALPHABET[usize::try_from(self.next() % 24).unwrap()])
            .collect()
    }
}

/// `backends::readback::xl_config` and `xl_disk` (the reader the fuzz targets check the emitter
/// with) read what libxlutil reads: on 40 generated files of hostile strings and disk specs,
/// and on hand-written files using the rest of the grammar (single quotes, hex, comments,
/// multi-line lists, `;`, repeated keys, letter escapes).
#[test]
fn readback_reader_agrees_with_libxlutil() {
    use backends::readback::{xl_config, xl_disk};
    use backends::xl::{XlConfig, XlValue, disk_spec};
    if xlcfg_checker().is_none() {
        return;
    }
    let mut g = Hostile(0x9e37_79b9_7f4a_7c15);
    let mut files: Vec<String> = Vec::new();
    for _ in 0..40 {
        let mut cfg = XlConfig::new();
        for k in 0..10 {
            // Strings xl.cfg cannot hold (control characters) are the writer's to refuse.
            let s = g.string();
            let _ = cfg.set(&format!("s{k}"), s);
        }
        let disks: Vec<XlValue> = (0..3)
            .filter_map(|i| {
                let p = g.string();
                disk_spec(&p, &format!("xvd{}", char::from(b'a' + i)), i == 1, "raw")
                    .ok()
                    .map(XlValue::from)
            })
            .collect();
        cfg.set("disk", disks).unwrap();
        files.push(cfg.render().unwrap());
    }
    files.extend(
        [
            "s0 = 'single \"q\" \\' x'\ns1 = \"a\\fb\\a\\v\"\n",
            "# comment\ns0 = \"x\" # trailing\n\ns1 = 'y' ; s2 = \"z\"\n",
            "disk = [\n  'format=raw, vdev=xvda, access=rw, target=/a,b',\n  # c\n  \"vdev=xvdb,target=/c d\" ,\n]\nn0 = 0x1f\n",
            "s0 = \"first\"\ns0 = \"second\"\n",
            "n0 = 010\ns0 = \"no newline at the end\"",
            "disk = [ \"vdev=xvda,access=ro,target=/a\\nb\" ]\n",
            // Refused by both.
            "s0 = \"a\\qb\"\n",
            "s0 = \"a\nb\"\n",
            "S0 = 1\n",
            "n0 = 0x1F\n",
            "s0 = [ 1 2 ]\n",
            "s0 = \"unterminated\n",
        ]
        .map(str::to_owned),
    );
    let keys: Vec<(String, XlKind)> = (0..10)
        .map(|k| (format!("s{k}"), XlKind::Str))
        .chain([
            ("disk".to_owned(), XlKind::Disk),
            ("n0".to_owned(), XlKind::Int),
        ])
        .collect();
    let keys: Vec<(&str, XlKind)> = keys.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    for (i, text) in files.iter().enumerate() {
        let path = scratch(&format!("readback-{i}.cfg"));
        std::fs::write(&path, text).unwrap();
        let oracle = xl_parse(&path, &keys);
        let ours = xl_config(text);
        let (oracle, ours) = match (oracle, ours) {
            (Ok(o), Ok(m)) => (o, m),
            (Err(_), Err(_)) => continue,
            (o, m) => panic!(
                "libxlutil: {:?}\nours: {m:?}\n{text}",
                o.map(|_| "accepted")
            ),
        };
        let get = |k: &str| ours.iter().find(|(n, _)| n == k).map(|(_, v)| v);
        for (k, kind) in &keys {
            match kind {
                XlKind::Str => {
                    let mine = match get(k) {
                        Some(XlValue::Str(s)) => Some(s.as_bytes()),
                        None => None,
                        Some(v) => panic!("{k}: {v:?}"),
                    };
                    assert_eq!(mine, oracle.string(k), "{k} in\n{text}");
                }
                XlKind::Int => {
                    let mine = match get(k) {
                        Some(XlValue::Int(n)) => Some(i64::try_from(*n).unwrap()),
                        None => None,
                        Some(v) => panic!("{k}: {v:?}"),
                    };
                    assert_eq!(mine, oracle.int(k), "{k} in\n{text}");
                }
                XlKind::Disk | XlKind::List => {
                    let mine: Vec<String> = match get(k) {
                        Some(XlValue::List(items)) => items
                            .iter()
                            .map(|v| match v {
                                XlValue::Str(s) => s.clone(),
                                v => panic!("{v:?}"),
                            })
                            .collect(),
                        None => vec![],
                        Some(v) => panic!("{k}: {v:?}"),
                    };
                    let theirs = oracle.disks(k).unwrap_or_default();
                    assert_eq!(mine.len(), theirs.len(), "{k} in\n{text}");
                    for (spec, item) in mine.iter().zip(theirs) {
                        assert_eq!(Some(spec.as_bytes()), item.spec.as_deref());
                        let Ok(parsed) = item.parsed.clone().unwrap() else {
                            assert!(xl_disk(spec).is_err(), "libxlutil refuses {spec:?}");
                            continue;
                        };
                        let items = xl_disk(spec).unwrap();
                        let field = |f: &str| {
                            items
                                .iter()
                                .find(|(n, _)| n == f)
                                .map(|(_, v)| v.as_bytes().to_vec())
                        };
                        assert_eq!(field("target"), parsed.pdev_path, "{spec:?}");
                        assert_eq!(field("vdev"), parsed.vdev, "{spec:?}");
                        let rw = field("access").is_none_or(|a| a == b"rw");
                        assert_eq!(rw, parsed.readwrite, "{spec:?}");
                    }
                }
            }
        }
    }
    // `08` lexes as a number, but `xlu_cfg_get_long` (strtol base 0) cannot read it: xl
    // fails on it; our reader refuses it when parsing.
    let path = scratch("readback-octal.cfg");
    std::fs::write(&path, "n0 = 08\n").unwrap();
    let oracle = xl_parse(&path, &[("n0", XlKind::Int)]).unwrap();
    assert_eq!(oracle.int("n0"), None);
    assert!(xl_config("n0 = 08\n").is_err());
}
