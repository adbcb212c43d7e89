//! The QEMU emitter fed arbitrary paths, command lines and names: the argv, printed as a shell
//! line and read back by POSIX shell rules, is the same argv; and each value, read back by
//! QEMU's option rules (`,,` escapes, multiboot module lists), is the value given.
#![no_main]

use anyboot_fuzz::emit::{Input, cmdline_extends, plan, s, shell_round_trip, values};
use backends::qemu::{Accel, QemuOptions};
use backends::readback::{qemu_multiboot_modules, qemu_opts};
use libfuzzer_sys::fuzz_target;
use loader::plan::Protocol;

fuzz_target!(|input: Input| {
    let (_, _, _, Some(plan)) = plan(&input) else {
        return;
    };
    let accel = if input.cpus % 2 == 0 {
        Accel::Kvm
    } else {
        Accel::Tcg
    };
    let argv = match backends::qemu::argv(
        &plan,
        &QemuOptions {
            accel,
            ..Default::default()
        },
    ) {
        Ok(a) => a,
        Err(e) => return anyboot_fuzz::check_error("qemu", &e),
    };
    shell_round_trip(&argv);
    let argv = backends::readback::qemu_argv(&argv).unwrap_or_else(|e| panic!("{e}: {argv:?}"));
    assert_eq!(values(&argv, "-kernel"), [s(&plan.boot_image)]);
    let initrd = values(&argv, "-initrd");
    match plan.modules.first() {
        None => assert!(initrd.is_empty()),
        Some(m) if plan.protocol == Protocol::Multiboot => {
            let mods = qemu_multiboot_modules(initrd[0]);
            assert_eq!(
                mods,
                [(s(&m.path).to_owned(), s(&m.path).to_owned())],
                "{initrd:?}"
            );
        }
        Some(m) => assert_eq!(initrd, [s(&m.path)]),
    }
    match values(&argv, "-append").as_slice() {
        [] => assert!(plan.cmdline.is_empty()),
        [a] => cmdline_extends(&plan, a),
        more => panic!("-append given {} times", more.len()),
    }
    let drives = values(&argv, "-drive");
    assert_eq!(drives.len(), plan.disks.len());
    for (d, spec) in plan.disks.iter().zip(drives) {
        let opts = qemu_opts(spec);
        let get = |k: &str| {
            opts.iter()
                .filter(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        let file = get("file");
        assert_eq!(file.len(), 1, "{spec:?}");
        let name = backends::readback::qemu_block_filename(file[0])
            .unwrap_or_else(|e| panic!("{spec:?}: {e}"));
        // A relative path that would read as a protocol is written as ./PATH, the same file.
        let p = s(&d.path);
        assert!(
            name == p || (name.strip_prefix("./") == Some(p) && !p.starts_with('/')),
            "{spec:?}"
        );
        assert_eq!(
            get("readonly"),
            if d.read_only { vec!["on"] } else { vec![] },
            "{spec:?}"
        );
        assert_eq!(
            opts.len(),
            4 + usize::from(d.read_only),
            "{spec:?} has extra options"
        );
    }
});
