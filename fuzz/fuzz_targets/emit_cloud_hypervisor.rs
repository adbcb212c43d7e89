//! The Cloud Hypervisor emitter fed arbitrary paths and command lines: the argv survives a
//! shell round trip, every flag's value is the one given, and each `--disk` option, read back
//! by Cloud Hypervisor's option-parser rules, names the disk's path and read-only flag.
#![no_main]

use anyboot_fuzz::emit::{Input, plan, s, shell_round_trip, values};
use backends::readback::ch_options;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: Input| {
    let (_, _, _, Some(plan)) = plan(&input) else {
        return;
    };
    let argv = match backends::cloud_hypervisor::argv(&plan) {
        Ok((a, _)) => a,
        Err(e) => return anyboot_fuzz::check_error("cloud-hypervisor", &e),
    };
    shell_round_trip(&argv);
    let argv: Vec<(String, Option<String>)> = backends::readback::ch_argv(&argv)
        .unwrap_or_else(|e| panic!("{e}: {argv:?}"))
        .into_iter()
        .map(|(f, v)| (f, Some(v)))
        .collect();
    assert_eq!(values(&argv, "--kernel"), [s(&plan.boot_image)]);
    assert_eq!(
        values(&argv, "--cmdline"),
        if plan.cmdline.is_empty() {
            vec![]
        } else {
            vec![plan.cmdline.as_str()]
        }
    );
    let initrd: Vec<&str> = plan
        .modules
        .first()
        .map(|m| s(&m.path))
        .into_iter()
        .collect();
    assert_eq!(values(&argv, "--initramfs"), initrd);
    let disks = values(&argv, "--disk");
    assert_eq!(disks.len(), plan.disks.len());
    for (d, spec) in plan.disks.iter().zip(disks) {
        let opts = ch_options(spec).unwrap_or_else(|e| panic!("--disk {spec:?}: {e}"));
        let mut want = vec![("path".to_owned(), s(&d.path).to_owned())];
        if d.read_only {
            want.push(("readonly".to_owned(), "on".to_owned()));
        }
        assert_eq!(opts, want, "--disk {spec:?}");
    }
});
