//! The Firecracker emitter fed arbitrary paths and command lines: the JSON it writes parses
//! back (serde_json, as Firecracker's own serde does) to the same paths, flags and command
//! line, and holds only the keys Firecracker's schema allows.
#![no_main]

use anyboot_fuzz::emit::{Input, cmdline_extends, plan, s};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|input: Input| {
    let (_, _, _, Some(plan)) = plan(&input) else {
        return;
    };
    let cfg = match backends::firecracker::config(&plan) {
        Ok(c) => c,
        Err(e) => return anyboot_fuzz::check_error("firecracker", &e),
    };
    let text = serde_json::to_string_pretty(&cfg.config).unwrap();
    let back: Value = serde_json::from_str(&text).expect("written JSON parses");
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&back), ["boot-source", "drives", "machine-config"]);
    let bs = &back["boot-source"];
    assert_eq!(bs["kernel_image_path"], s(&plan.boot_image));
    match plan.modules.first() {
        Some(m) => assert_eq!(bs["initrd_path"], s(&m.path)),
        None => assert!(bs.get("initrd_path").is_none()),
    }
    cmdline_extends(&plan, bs["boot_args"].as_str().unwrap());
    let drives = back["drives"].as_array().unwrap();
    assert_eq!(drives.len(), plan.disks.len());
    for (d, j) in plan.disks.iter().zip(drives) {
        assert_eq!(j["path_on_host"], s(&d.path));
        assert_eq!(j["is_read_only"], d.read_only);
    }
    assert_eq!(back["machine-config"]["mem_size_mib"], plan.memory.size_mib);
    assert_eq!(back["machine-config"]["vcpu_count"], plan.cpus);
});
