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
