//! The xl.cfg writer checked against Xen's own parser: every config is written to a file, read
//! back with libxlutil (`anyboot_fixtures::xlcfg`) and compared byte for byte.
//!
//! Needs `cc` and libxen-dev; skips loudly without them, fails under
//! `ANYBOOT_REQUIRE_ORACLES=1`.

use std::fs;

use anyboot_fixtures::kernels::tool_or_skip;
use anyboot_fixtures::scratch;
use anyboot_fixtures::xlcfg::{XlDisk, XlGot, XlKind, XlParsed, xl_parse, xlcfg_checker};
use backends::xl::{XlConfig, XlError, XlValue, disk_spec, quote};

/// The oracle is available (`cc` and libxen-dev), else a loud skip (a panic when oracles are
/// required).
fn oracle() -> bool {
    tool_or_skip("cc").is_some() && xlcfg_checker().is_some()
}

fn parse_text(name: &str, text: &[u8], keys: &[(&str, XlKind)]) -> Result<XlParsed, String> {
    let path = scratch(name);
    fs::write(&path, text).unwrap();
    xl_parse(&path, keys)
}

/// Strings that break naive writers.
/// What libxlutil's `xlu_disk_parse` made of the first `disk` entry of a config text.
fn first_disk(name: &str, text: &[u8]) -> XlDisk {
    let parsed = parse_text(name, text, &[("disk", XlKind::Disk)]).unwrap();
    parsed.disks("disk").unwrap()[0]
        .parsed
        .clone()
        .unwrap()
        .unwrap()
}

fn hostile() -> Vec<String> {
    let mut v: Vec<String> = [
        "",
        "plain",
        "double \" quote",
        "\"",
        "\"\"",
        "single ' quote",
        "'",
        "back\\slash",
        "trailing backslash\\",
        "\\",
        "\\\\",
        "\\\"",
        "\\n not a newline",
        "\\x41 not hex",
        "\\101 not octal",
        "comma, separated,list",
        ",",
        "  spaces  around  ",
        " ",
        "dollar $HOME ${x} $(id)",
        "hash # not a comment",
        "#",
        "semi; colon",
        ";",
        "[ bracket ]",
        "[",
        "]",
        "equals = sign",
        "=",
        "tab\there",
        "\t",
        "line\nfeed",
        "\n",
        "trailing newline\n",
        "carriage\rreturn",
        "crlf\r\n",
        "é",
        "café",
        "日本",
        "🦀 emoji 👩‍💻",
        "\u{85} next-line (C1)",
        "\u{a0}nbsp\u{feff}bom\u{2028}ls",
        "console=hvc0 root=/dev/xvda rw init=\"/bin/sh -c 'echo hi; exit'\"",
        "key = \"value\"\n# comment\n[ \"x\" ]",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let mut big = String::new();
    let unit = "a\\\"b'c,d e\tf\ng#h;é日🦀";
    while big.len() + unit.len() <= 4096 {
        big.push_str(unit);
    }
    while big.len() < 4096 {
        big.push('z');
    }
    assert_eq!(big.len(), 4096);
    v.push(big);
    v
}

const STRING_KEYS: [&str; 7] = [
    "name",
    "kernel",
    "cmdline",
    "ramdisk",
    "on_poweroff",
    "on_reboot",
    "on_crash",
];

fn request() -> Vec<(&'static str, XlKind)> {
    let mut keys: Vec<_> = STRING_KEYS.iter().map(|k| (*k, XlKind::Str)).collect();
    keys.extend([
        ("memory", XlKind::Int),
        ("vcpus", XlKind::Int),
        ("disk", XlKind::Disk),
        ("extra", XlKind::List),
    ]);
    keys
}

/// Why `disk_spec` must refuse `path`, if it must.
fn disk_refusal(path: &str) -> Option<XlError> {
    if path.is_empty() {
        Some(XlError::EmptyDiskTarget)
    } else if let Some(offset) = path.find('\n') {
        Some(XlError::DiskTargetNewline {
            path: path.into(),
            offset,
        })
    } else if path.ends_with(',') {
        Some(XlError::DiskTargetTrailingComma { path: path.into() })
    } else {
        None
    }
}

#[test]
fn hostile_strings_round_trip_through_libxlutil() {
    if !oracle() {
        return;
    }
    for (i, s) in hostile().iter().enumerate() {
        // Each string goes into every string key, a list and two disk paths.
        let mut cfg = XlConfig::new();
        cfg.comment(&format!("hostile string #{i}")).unwrap();
        for key in STRING_KEYS {
            cfg.set(key, s.as_str()).unwrap();
        }
        cfg.set("memory", 512).unwrap();
        cfg.set("vcpus", (i as u64) + 1).unwrap();

        let mut disks = Vec::new();
        for (j, path) in [format!("/srv/{s}.img"), s.clone()].into_iter().enumerate() {
            let vdev = if j == 0 { "xvda" } else { "xvdb" };
            let read_only = (i + j) % 2 == 0;
            match disk_refusal(&path) {
                Some(expected) => assert_eq!(
                    disk_spec(&path, vdev, read_only, "raw"),
                    Err(expected),
                    "{path:?}"
                ),
                None => {
                    let spec = disk_spec(&path, vdev, read_only, "raw").unwrap();
                    disks.push((spec, path, vdev, read_only));
                }
            }
        }
        cfg.set(
            "disk",
            disks
                .iter()
                .map(|(spec, ..)| XlValue::from(spec.as_str()))
                .collect::<Vec<_>>(),
        )
        .unwrap();
        cfg.set(
            "extra",
            vec![
                XlValue::from(s.as_str()),
                XlValue::from(7),
                XlValue::from(s.as_str()),
            ],
        )
        .unwrap();

        let text = cfg.render().unwrap();
        assert!(text.ends_with('\n') && !text.contains('\r'), "{text:?}");
        let parsed = parse_text(&format!("hostile-{i}.cfg"), text.as_bytes(), &request())
            .unwrap_or_else(|e| panic!("libxlutil rejected string #{i} {s:?}: {e}\n{text}"));
        assert_eq!(parsed.report, "", "warnings for #{i} {s:?}");

        for key in STRING_KEYS {
            assert_eq!(
                parsed.string(key),
                Some(s.as_bytes()),
                "key {key}, string #{i} {s:?}"
            );
        }
        assert_eq!(parsed.int("memory"), Some(512));
        assert_eq!(parsed.int("vcpus"), Some(i as i64 + 1));
        assert_eq!(
            parsed.list("extra").unwrap(),
            [Some(s.as_bytes()), Some(&b"7"[..]), Some(s.as_bytes())]
        );
        let got = parsed.disks("disk").unwrap();
        assert_eq!(got.len(), disks.len());
        for (item, (spec, path, vdev, read_only)) in got.iter().zip(&disks) {
            assert_eq!(item.spec.as_deref(), Some(spec.as_bytes()));
            assert_eq!(
                item.parsed,
                Some(Ok(XlDisk {
                    pdev_path: Some(path.as_bytes().to_vec()),
                    vdev: Some(vdev.as_bytes().to_vec()),
                    format: "raw".into(),
                    readwrite: !read_only,
                })),
                "disk spec {spec:?}"
            );
        }
    }
}

#[test]
fn every_quotable_character_round_trips() {
    if !oracle() {
        return;
    }
    // All of ASCII that quote() accepts, then a sample of code points up to U+10FFFF.
    let mut s: String = (0u8..0x80)
        .map(char::from)
        .filter(|c| quote(&c.to_string()).is_ok())
        .collect();
    s.extend(
        (0x80u32..=0x10_ffff)
            .step_by(997)
            .filter_map(char::from_u32),
    );
    let mut cfg = XlConfig::new();
    cfg.set("cmdline", s.as_str()).unwrap();
    let parsed = parse_text(
        "all-chars.cfg",
        cfg.render().unwrap().as_bytes(),
        &[("cmdline", XlKind::Str)],
    )
    .unwrap();
    assert_eq!(parsed.string("cmdline"), Some(s.as_bytes()));
}

#[test]
fn keys_numbers_and_lists_parse() {
    if !oracle() {
        return;
    }
    let mut cfg = XlConfig::new();
    cfg.comment("").unwrap();
    cfg.comment("comment with é, \t tab, \"quotes\", # and ;")
        .unwrap();
    cfg.set("a.b_c9", "dotted").unwrap();
    cfg.set("zero", 0).unwrap();
    cfg.set("max", i64::MAX as u64).unwrap();
    cfg.set("over", i64::MAX as u64 + 1).unwrap();
    cfg.set("empty", Vec::new()).unwrap();
    cfg.set(
        "nested",
        vec![
            XlValue::List(vec![XlValue::from("in")]),
            XlValue::from("out"),
        ],
    )
    .unwrap();
    let parsed = parse_text(
        "keys.cfg",
        cfg.render().unwrap().as_bytes(),
        &[
            ("a.b_c9", XlKind::Str),
            ("zero", XlKind::Int),
            ("max", XlKind::Int),
            ("over", XlKind::Int),
            ("over", XlKind::Str),
            ("empty", XlKind::List),
            ("nested", XlKind::List),
            ("absent", XlKind::Str),
        ],
    )
    .unwrap();
    assert_eq!(parsed.string("a.b_c9"), Some(&b"dotted"[..]));
    assert_eq!(parsed.int("zero"), Some(0));
    assert_eq!(parsed.int("max"), Some(i64::MAX));
    // u64 values above i64::MAX are valid syntax, but xl reads numbers with strtol.
    assert_eq!(parsed.values[3], ("over".into(), XlGot::Error(34)));
    assert_eq!(
        parsed.values[4],
        ("over".into(), XlGot::Str(b"9223372036854775808".to_vec()))
    );
    assert!(parsed.report.contains("out of range"), "{}", parsed.report);
    assert_eq!(parsed.list("empty").unwrap(), Vec::<Option<&[u8]>>::new());
    assert_eq!(parsed.list("nested").unwrap(), [None, Some(&b"out"[..])]);
    assert_eq!(parsed.get("absent"), Some(&XlGot::Error(3)));
}

#[test]
fn unrepresentable_inputs_are_errors() {
    for c in (0u8..0x20).chain([0x7f]).map(char::from) {
        if matches!(c, '\n' | '\r' | '\t') {
            continue;
        }
        let s = format!("ab{c}d");
        assert_eq!(quote(&s), Err(XlError::ControlChar { ch: c, offset: 2 }));
        let mut cfg = XlConfig::new();
        let err = cfg.set("cmdline", s.as_str()).unwrap_err();
        assert!(
            matches!(&err, XlError::Value { key, .. } if key == "cmdline"),
            "{err:?}"
        );
        assert!(err.to_string().contains("byte offset 2"), "{err}");
        assert!(cfg.comment(&s).is_err());
        assert!(disk_spec(&s, "xvda", true, "raw").is_err());
    }
    let mut cfg = XlConfig::new();
    for key in ["Name", "NAME", "kernelPath", "on-crash", "9p", "", "ключ"] {
        assert_eq!(
            cfg.set(key, "x"),
            Err(XlError::InvalidKey { key: key.into() })
        );
    }
    assert!(cfg.comment("two\nlines").is_err());
    assert!(disk_spec("/x", "xvda", true, "raw,").is_err());
    assert!(disk_spec("/x", "xvda a", true, "raw").is_err());
    assert!(disk_spec("/x", "vdev=xvda", true, "raw").is_err());
}

/// Each mistake the writer refuses is one libxlutil really rejects or garbles; this also
/// proves the oracle can fail.
#[test]
fn oracle_rejects_what_the_writer_avoids() {
    if !oracle() {
        return;
    }
    let str_key = [("cmdline", XlKind::Str)];
    let err = |name: &str, text: &[u8]| {
        parse_text(name, text, &str_key).expect_err(&format!(
            "libxlutil accepted {:?}",
            String::from_utf8_lossy(text)
        ))
    };

    let e = err("hex.cfg", b"cmdline = \"a\\x41b\"\n");
    assert!(e.contains("invalid digit after backslash hex"), "{e}");
    let e = err("octal0.cfg", b"cmdline = \"a\\0b\"\n");
    assert!(e.contains("invalid digit after backslash octal"), "{e}");
    let e = err("unknown-escape.cfg", b"cmdline = \"a\\qb\"\n");
    assert!(e.contains("invalid character after backlash"), "{e}");
    let e = err("upper.cfg", b"Cmdline = \"x\"\n");
    assert!(e.contains("near `Cmdline': lexical error"), "{e}");
    let e = err("final-comment.cfg", b"cmdline = \"x\"\n# no newline");
    assert!(e.contains("lexical error"), "{e}");
    let e = err("crlf.cfg", b"cmdline = \"x\"\r\n");
    assert!(e.contains("lexical error"), "{e}");
    let e = err("raw-lf.cfg", b"cmdline = \"a\nb\"\n");
    assert!(e.contains("lexical error"), "{e}");
    let e = err("hex-number.cfg", b"memory = 0x1F\nmemory = -1\n");
    assert!(e.contains("config parsing error"), "{e}");
    // A raw NUL inside quotes trips an assertion in libxlutil: xl itself would abort.
    let e = err("raw-nul.cfg", b"cmdline = \"a\0b\"\n");
    assert!(e.contains("crashed") && e.contains("Assertion"), "{e}");

    // Octal escapes are silently dropped, not decoded.
    let parsed = parse_text("octal.cfg", b"cmdline = \"x\\101y\"\n", &str_key).unwrap();
    assert_eq!(parsed.string("cmdline"), Some(&b"xy"[..]));

    // What disk_spec refuses: a trailing comma vanishes from target=, a line feed ends it.
    let disk = first_disk(
        "disk-comma.cfg",
        b"disk = [ \"vdev=xvda, target=/a,b,\" ]\n",
    );
    assert_eq!(disk.pdev_path.as_deref(), Some(&b"/a,b"[..]));
    let disk = first_disk(
        "disk-lf.cfg",
        b"disk = [ \"vdev=xvda, target=/a\\nraw\" ]\n",
    );
    assert_eq!(disk.pdev_path.as_deref(), Some(&b"/a"[..]));
}
