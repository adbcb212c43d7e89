//! Emitters that cannot be run here (Firecracker, Cloud Hypervisor are not packaged in Debian)
//! checked against their documented schemas, `anyboot check`, and the qemu command line for a
//! NetBSD-shaped kernel against NetBSD's own MICROVM usage block.
//!
//! Schemas, as documented upstream:
//! - Firecracker v1.12–v1.16 `--config-file` (`src/vmm/src/resources.rs`, `vmm_config/*.rs`):
//!   `boot-source` {`kernel_image_path` (string, required), `boot_args`, `initrd_path`
//!   (strings)}; `drives` [{`drive_id`, `path_on_host` (strings), `is_root_device`,
//!   `is_read_only` (bools)}]; `machine-config` {`vcpu_count` (1–32), `mem_size_mib` (integer),
//!   `smt` (bool)}; unknown fields are rejected.
//! - Cloud Hypervisor v39+ (`cloud-hypervisor/src/main.rs`, `vmm/src/config.rs`): `--kernel`,
//!   `--cmdline`, `--initramfs`, `--disk path=...[,readonly=on]`, `--serial tty`, `--console off`,
//!   `--memory size=<N>M`, `--cpus boot=<N>`.
//! - NetBSD `sys/arch/amd64/conf/MICROVM` usage block: `-M microvm,x-option-roms=off,rtc=on,
//!   acpi=off,pic=off`, `-cpu host,+invtsc`, `-append "root=ld0a console=com"`,
//!   `-device virtio-blk-device`, `-global virtio-mmio.force-legacy=false`.

use std::path::Path;
use std::process::Command;

use anyboot_fixtures::kernels::kernel_or_skip;
use anyboot_fixtures::netbsd_like;
use anyboot_fixtures::scratch;
use serde_json::Value;

fn anyboot(args: &[&str], kernel: &Path) -> (i32, String, String) {
    let out = Command::new(assert_cmd::cargo::cargo_bin!("anyboot"))
        .args(&args[..2.min(args.len())])
        .arg(kernel)
        .args(args.get(2..).unwrap_or_default())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Only the documented keys, with the documented types.
fn assert_firecracker_schema(c: &Value) {
    let obj = c.as_object().unwrap();
    for k in obj.keys() {
        assert!(
            ["boot-source", "drives", "machine-config"].contains(&k.as_str()),
            "unknown {k}"
        );
    }
    let bs = c["boot-source"]
        .as_object()
        .expect("boot-source is required");
    for (k, v) in bs {
        assert!(
            ["kernel_image_path", "boot_args", "initrd_path"].contains(&k.as_str()),
            "{k}"
        );
        assert!(v.is_string(), "{k} must be a string");
    }
    assert!(bs.contains_key("kernel_image_path"));
    for d in c["drives"].as_array().expect("drives is a list") {
        for (k, v) in d.as_object().unwrap() {
            match k.as_str() {
                "drive_id" | "path_on_host" => assert!(v.is_string()),
                "is_root_device" | "is_read_only" => assert!(v.is_boolean()),
                other => panic!("unknown drive field {other}"),
            }
        }
    }
    let mc = c["machine-config"].as_object().unwrap();
    for (k, v) in mc {
        match k.as_str() {
            "vcpu_count" => assert!((1..=32).contains(&v.as_u64().unwrap())),
            "mem_size_mib" => assert!(v.is_u64()),
            "smt" => assert!(v.is_boolean()),
            other => panic!("unknown machine-config field {other}"),
        }
    }
}

#[test]
fn firecracker_and_cloud_hypervisor_for_debian() {
    let Some(k) = kernel_or_skip("cloud") else {
        return;
    };
    let initrd = scratch("initrd.img");
    std::fs::write(&initrd, b"x").unwrap();
    let dir = scratch("extract");
    let (code, out, err) = anyboot(
        &[
            "emit",
            "firecracker",
            "--initrd",
            initrd.to_str().unwrap(),
            "--disk",
            "/srv/root.img,ro",
            "--cpus",
            "2",
            "--extract-to",
            dir.to_str().unwrap(),
        ],
        &k.vmlinuz,
    );
    assert_eq!(code, 0, "{err}");
    let c: Value = serde_json::from_str(&out).unwrap();
    assert_firecracker_schema(&c);
    // A bzImage boots after extraction, by PVH: the config names the extracted vmlinux.
    let kip = c["boot-source"]["kernel_image_path"].as_str().unwrap();
    assert!(kip.starts_with(dir.to_str().unwrap()), "{kip}");
    assert_eq!(&std::fs::read(kip).unwrap()[..4], b"\x7fELF");
    assert!(
        err.contains("v1.12.0"),
        "the PVH version fact is stated: {err}"
    );
    assert!(
        c["boot-source"]["boot_args"]
            .as_str()
            .unwrap()
            .contains("console=ttyS0")
    );
    assert_eq!(c["drives"][0]["is_read_only"], true);
    assert_eq!(c["machine-config"]["vcpu_count"], 2);
    // Forcing the bzImage itself is refused with the release fact.
    let (code, _, err) = anyboot(&["emit", "firecracker", "--protocol", "linux"], &k.vmlinuz);
    assert_eq!(code, 2);
    assert!(err.contains("v1.16.1"), "{err}");

    let (code, out, err) = anyboot(
        &[
            "emit",
            "cloud-hypervisor",
            "--format",
            "json",
            "--disk",
            "/srv/root.img,ro",
        ],
        &k.vmlinuz,
    );
    assert_eq!(code, 0, "{err}");
    let argv: Vec<String> = serde_json::from_str(&out).unwrap();
    assert_eq!(argv[0], "cloud-hypervisor");
    let mut i = 1;
    while i < argv.len() {
        let (flag, value) = (&argv[i], &argv[i + 1]);
        match flag.as_str() {
            "--kernel" | "--cmdline" | "--initramfs" => {}
            "--disk" => assert!(value.starts_with("path="), "{value}"),
            "--serial" => assert_eq!(value, "tty"),
            "--console" => assert_eq!(value, "off"),
            "--memory" => assert!(value.starts_with("size=") && value.ends_with('M')),
            "--cpus" => assert!(value.starts_with("boot=")),
            other => panic!("undocumented flag {other}"),
        }
        i += 2;
    }
    assert!(argv.contains(&"path=/srv/root.img,readonly=on".to_owned()));
    assert!(err.contains("v39"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn netbsd_microvm_command_line_follows_its_usage_block() {
    let k = scratch("netbsd-MICROVM");
    std::fs::write(&k, netbsd_like()).unwrap();
    let (code, out, err) = anyboot(
        &[
            "emit",
            "qemu",
            "--format",
            "json",
            "--accel",
            "kvm",
            "--disk",
            "/srv/netbsd.img",
            "--cmdline",
            "root=ld0a console=com rw -z",
            "--mem",
            "256",
        ],
        &k,
    );
    assert_eq!(code, 0, "{err}");
    let argv: Vec<String> = serde_json::from_str(&out).unwrap();
    let after = |flag: &str| {
        argv.windows(2)
            .find(|w| w[0] == flag)
            .map(|w| w[1].clone())
            .unwrap_or_else(|| panic!("no {flag} in {argv:?}"))
    };
    assert_eq!(
        after("-M"),
        "microvm,x-option-roms=off,rtc=on,acpi=off,pic=off"
    );
    assert!(after("-cpu").starts_with("host,+invtsc"));
    assert_eq!(
        after("-append"),
        "root=ld0a console=com rw -z",
        "NetBSD's line is kept as given"
    );
    assert_eq!(after("-global"), "virtio-mmio.force-legacy=false");
    assert_eq!(after("-device"), "virtio-blk-device,drive=d0");
    assert_eq!(after("-m"), "256M");
    assert_eq!(
        after("-kernel"),
        k.to_str().unwrap(),
        "NetBSD boots by PVH from the ELF itself"
    );
    // xl: type pvh; check: qemu, xl, firecracker and cloud-hypervisor all boot it.
    let (_, cfg, _) = anyboot(&["emit", "xl"], &k);
    assert!(cfg.contains("type = \"pvh\"\n"), "{cfg}");
    let (code, out, _) = anyboot(&["check", "--json"], &k);
    assert_eq!(code, 0);
    let rows: Vec<Value> = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["backend"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["kvm", "qemu", "xl", "firecracker", "cloud-hypervisor"]
    );
    for r in &rows[1..] {
        assert_eq!(r["verdict"], "boots", "{r}");
    }
}

#[test]
fn check_table_for_a_bzimage() {
    let Some(k) = kernel_or_skip("cloud") else {
        return;
    };
    let (code, out, _) = anyboot(&["check", "--json"], &k.vmlinuz);
    assert_eq!(code, 0);
    let rows: Vec<Value> = serde_json::from_str(&out).unwrap();
    let verdict = |b: &str| {
        rows.iter()
            .find(|r| r["backend"] == b)
            .map(|r| r["verdict"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(verdict("qemu"), "boots");
    assert_eq!(verdict("xl"), "boots");
    assert_eq!(verdict("firecracker"), "boots after extraction");
    assert_eq!(verdict("cloud-hypervisor"), "boots");
    for r in &rows {
        assert!(!r["reason"].as_str().unwrap().is_empty());
    }
}
