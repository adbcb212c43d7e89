//! The xl.cfg emitter fed arbitrary paths, command lines and names: the file, read back by
//! libxlutil's rules (`backends::readback::xl_config`, itself checked against libxlutil in
//! tests/emit_xl.rs), holds exactly the values given, and every disk spec, read by the disk
//! lexer's rules, names the same target and access.
#![no_main]

use anyboot_fuzz::emit::{Input, plan};
use backends::readback::{xl_config, xl_disk};
use backends::xl::XlValue;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: Input| {
    let (kernel, report, opts, _) = plan(&input);
    let text = match backends::xl::emit(&kernel, report, &opts) {
        Ok(t) => t,
        Err(e) => return anyboot_fuzz::check_error("xl", &e),
    };
    let cfg = xl_config(&text)
        .unwrap_or_else(|e| panic!("written xl.cfg does not read back: {e}\n{text}"));
    let get = |k: &str| cfg.iter().find(|(n, _)| n == k).map(|(_, v)| v);
    let str_of = |k: &str| match get(k) {
        Some(XlValue::Str(s)) => Some(s.as_str()),
        None => None,
        Some(v) => panic!("{k} is {v:?}"),
    };
    assert_eq!(str_of("kernel"), Some(input.kernel.as_str()));
    assert_eq!(str_of("ramdisk"), input.initrd.as_deref());
    if let Some(name) = &input.name {
        assert_eq!(str_of("name"), Some(name.as_str()));
    }
    if let Some(c) = input.cmdline.as_deref().filter(|c| !c.is_empty()) {
        assert_eq!(str_of("cmdline"), Some(c));
    }
    assert_eq!(get("memory"), Some(&XlValue::Int(u64::from(input.mem_mib))));
    let disks = match get("disk") {
        None => vec![],
        Some(XlValue::List(items)) => items.clone(),
        Some(v) => panic!("disk is {v:?}"),
    };
    assert_eq!(disks.len(), opts.disks.len());
    for (d, item) in opts.disks.iter().zip(disks) {
        let XlValue::Str(spec) = item else {
            panic!("disk item {item:?}")
        };
        let items = xl_disk(&spec).unwrap_or_else(|e| panic!("disk spec {spec:?}: {e}"));
        let get = |k: &str| items.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("target"), d.path.to_str(), "{spec:?}");
        assert_eq!(
            get("access"),
            Some(if d.read_only { "ro" } else { "rw" }),
            "{spec:?}"
        );
    }
});
