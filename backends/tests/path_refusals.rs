//! The path refusals of the argv and JSON emitters, fed the paths the command line cannot
//! produce but a library caller can: empty paths and paths holding a NUL. Each is refused with
//! a one-line message naming the path, escaped.

use std::path::{Path, PathBuf};

use anyboot_fixtures::{PvhSpec, multiboot_flat, pvh_elf};
use loader::plan::{BootPlan, Disk, PlanOptions};

fn plan(image: &[u8], kernel: &str, initrd: Option<&str>, disk: Option<&str>) -> BootPlan {
    let report = loader::inspect::inspect(&mut std::io::Cursor::new(image)).unwrap();
    let opts = PlanOptions {
        initrd: initrd.map(|p| (PathBuf::from(p), 4096)),
        disks: disk
            .map(|p| Disk {
                path: PathBuf::from(p),
                read_only: false,
            })
            .into_iter()
            .collect(),
        ..Default::default()
    };
    loader::plan::build(Path::new(kernel), &report, &opts).unwrap()
}

fn one_line(e: &dyn std::error::Error, expect: &str) {
    let msg = e.to_string();
    assert!(!msg.contains('\n') && !msg.contains('\0'), "{msg:?}");
    assert!(msg.contains(expect), "expected {expect:?} in {msg:?}");
}

#[test]
fn qemu_refuses_empty_and_nul_paths() {
    let elf = pvh_elf(&PvhSpec::default());
    let opts = backends::qemu::QemuOptions::default();
    let e = backends::qemu::argv(&plan(&elf, "/k", None, Some("")), &opts).unwrap_err();
    one_line(&e, "an empty path cannot be passed to QEMU");
    let e = backends::qemu::argv(&plan(&elf, "/k", Some("/in\0it"), None), &opts).unwrap_err();
    one_line(
        &e,
        "\"/in\\0it\": a path with a NUL byte cannot be passed to QEMU",
    );
    // A multiboot module path with a space and a line feed: named escaped, on one line.
    let mb = multiboot_flat(0x40, 0x2000, 0);
    let e = backends::qemu::argv(&plan(&mb, "/k", Some("/a b\nc"), None), &opts).unwrap_err();
    one_line(&e, "\"/a b\\nc\": a multiboot module path with a space");
}

#[test]
fn cloud_hypervisor_refuses_empty_and_nul_paths() {
    let elf = pvh_elf(&PvhSpec::default());
    for (initrd, disk, shown) in [
        (None, Some(""), "\"\""),
        (Some("/in\0it"), None, "\"/in\\0it\""),
    ] {
        let e = backends::cloud_hypervisor::argv(&plan(&elf, "/k", initrd, disk)).unwrap_err();
        one_line(
            &e,
            &format!("{shown}: an empty or non-UTF-8 path, or one with a NUL, cannot be passed"),
        );
    }
}

#[test]
fn firecracker_refuses_empty_and_nul_paths() {
    let elf = pvh_elf(&PvhSpec::default());
    for (initrd, disk, shown) in [
        (None, Some(""), "\"\""),
        (Some("/in\0it"), None, "\"/in\\0it\""),
    ] {
        let e = backends::firecracker::config(&plan(&elf, "/k", initrd, disk)).unwrap_err();
        one_line(
            &e,
            &format!(
                "{shown}: an empty path or one with a NUL byte cannot be opened by Firecracker"
            ),
        );
    }
}
