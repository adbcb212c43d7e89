//! Real Linux through `anyboot run`: Debian's cloud kernel with a busybox initramfs under the
//! KVM backend by PVH and by the Linux boot protocol (how far it gets on this host is the test's
//! finding), and a static program booted as `/init` with `--init` under the QEMU backend.
//!
//! Needs `cargo xtask kernels`, busybox-static, and /dev/kvm or qemu-system-x86_64; each is
//! skipped loudly when missing unless `ANYBOOT_REQUIRE_KERNELS=1` / `ANYBOOT_REQUIRE_ORACLES=1`.

use std::path::Path;
use std::process::{Command, Stdio};

use anyboot_fixtures::initramfs::{InitOptions, busybox_initramfs};
use anyboot_fixtures::kernels::{kernel_or_skip, kvm_or_skip, tool_or_skip};
use anyboot_fixtures::scratch;

const MARKER: &str = "ANYBOOT-KVM-LINUX";
const TOKEN: &str = "anyboot.kvm=linux-test";

fn anyboot(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(assert_cmd::cargo::cargo_bin!("anyboot"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Boot Debian's cloud kernel under KVM by PVH (the vmlinux extracted from the bzImage).
#[test]
fn debian_kernel_by_pvh_under_kvm() {
    boot_debian("pvh");
}

/// Boot Debian's cloud kernel under KVM by the Linux 64-bit boot protocol: the bzImage's own
/// decompressor runs first (about two minutes under this host's emulated KVM).
#[test]
fn debian_bzimage_by_linux_protocol_under_kvm() {
    boot_debian("linux");
}

/// On a KVM host that runs guest code natively Linux reaches init, and the busybox script
/// prints its markers and reboots (`reboot=t`: a triple fault, status 3). On a host whose KVM
/// emulates guest instructions in software (this project's development machines) Linux stops
/// at an instruction the emulator cannot do: the run must end with status 4 and the emulation
/// failure, after Linux has shown that it got the command line, the initrd and the memory map
/// anyboot handed it.
fn boot_debian(protocol: &str) {
    let Some(k) = kernel_or_skip("cloud") else {
        return;
    };
    if !kvm_or_skip() {
        return;
    }
    let Some(img) = busybox_initramfs(&k.root, MARKER, &InitOptions::default()) else {
        return;
    };
    let dir = scratch(&format!("kvm-linux-{protocol}"));
    std::fs::create_dir_all(&dir).unwrap();
    let initrd = dir.join("initrd.gz");
    std::fs::write(&initrd, img).unwrap();
    // cx16 hidden and `noxsave`: this host's KVM cannot emulate cmpxchg16b or xsave/xrstor
    // (Linux uses both before init); a real KVM host does not care.
    let cmdline = format!("console=ttyS0 reboot=t panic=-1 noxsave {TOKEN}");
    let common = [
        k.vmlinuz.to_str().unwrap(),
        "--protocol",
        protocol,
        "--extract-to",
        dir.to_str().unwrap(),
        "--initrd",
        initrd.to_str().unwrap(),
        "--mem",
        "256",
        "--cmdline",
        &cmdline,
    ];
    let (code, plan, err) = anyboot(&[&["plan", "--json"], &common[..]].concat());
    assert_eq!(code, 0, "{err}");
    let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
    let (code, out, err) = anyboot(
        &[
            &["run"],
            &common[..],
            &["--cpu-disable", "cx16", "--timeout", "900", "--time"],
        ]
        .concat(),
    );
    eprintln!("{protocol}: status {code}\n--- stderr ---\n{err}\n--- last console lines ---");
    for l in out
        .lines()
        .rev()
        .take(15)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        eprintln!("{l}");
    }
    // Linux's own log is the oracle for what anyboot handed over.
    assert!(out.contains("Linux version 6."), "no kernel banner:\n{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("Command line:") && l.contains(TOKEN)),
        "the command line did not reach Linux"
    );
    let rd = &plan["modules"][0];
    let (addr, size) = (rd["addr"].as_u64().unwrap(), rd["size"].as_u64().unwrap());
    let end = (addr + size).div_ceil(4096) * 4096 - 1;
    assert!(
        out.contains(&format!("RAMDISK: [mem {addr:#010x}-{end:#010x}]")),
        "Linux did not find the initrd at {addr:#x}:\n{out}"
    );
    for r in plan["memory"]["map"].as_array().unwrap() {
        let (start, size) = (r["start"].as_u64().unwrap(), r["size"].as_u64().unwrap());
        let kind = if r["kind"] == "ram" {
            "usable"
        } else {
            "reserved"
        };
        let line = format!(
            "BIOS-e820: [mem {start:#018x}-{:#018x}] {kind}",
            start + size - 1
        );
        assert!(out.contains(&line), "Linux's e820 lacks {line}:\n{out}");
    }
    if out.contains(&format!("{MARKER} DONE")) {
        // A KVM that runs Linux: init ran and rebooted (reboot=t, a triple fault).
        assert_eq!(code, 3, "{err}");
    } else {
        assert_eq!(code, 4, "neither init nor a VM failure:\n{err}");
        assert!(err.contains("emulation failure"), "{err}");
        assert!(err.contains("rip=0x"), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `run --init`: a static C program becomes `/init` of an initramfs anyboot builds, and Debian's
/// kernel runs it as pid 1 (under QEMU, which this host can run Linux under).
#[test]
fn init_binary_runs_as_pid_1() {
    let Some(k) = kernel_or_skip("cloud") else {
        return;
    };
    let Some(cc) = tool_or_skip("cc") else {
        return;
    };
    if tool_or_skip("qemu-system-x86_64").is_none() {
        return;
    }
    let dir = scratch("kvm-linux-init");
    std::fs::create_dir_all(&dir).unwrap();
    let init = dir.join("hello-init");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/c/hello_init.c");
    let st = Command::new(cc)
        .args(["-static", "-Os", "-o"])
        .arg(&init)
        .arg(&src)
        .status()
        .unwrap();
    assert!(
        st.success(),
        "cc -static failed (libc6-dev provides libc.a)"
    );
    let (code, out, err) = anyboot(&[
        "run",
        k.vmlinuz.to_str().unwrap(),
        "--init",
        init.to_str().unwrap(),
        "--backend",
        "qemu",
        "--accel",
        "tcg",
        "--mem",
        "256",
        "--timeout",
        "120",
    ]);
    assert!(
        out.contains("ANYBOOT-INIT pid=1 argv0=/init"),
        "status {code}\n{err}\n{out}"
    );
    assert_eq!(code, 0, "poweroff ends the run with 0: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}
