//! `anyboot plan` end to end. Expected values come from outside anyboot: the setup-header
//! fields read with `od` at boot.rst's offsets, `readelf -l` on the vmlinux extracted by the
//! shell recipe, and the values the fixtures were built with.

// Test images are small: their sizes always fit the narrower integer types.
#![allow(clippy::cast_possible_truncation)]

use std::path::Path;
use std::process::Command;

use anyboot_fixtures::kernels::{kernel_or_skip, tool_or_skip};
use anyboot_fixtures::scratch;
use anyboot_fixtures::{ElfSpec, LoadSpec, NoteSpec, build_elf, multiboot_flat, netbsd_like, uint};
use serde_json::Value;

fn anyboot() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin!("anyboot"))
}

fn plan(kernel: &Path, args: &[&str]) -> Value {
    let out = anyboot()
        .arg("plan")
        .arg(kernel)
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "plan {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Exit 2 and one line naming the file at fault (the kernel, or the option's file) and
/// containing `expect`.
fn plan_fails(kernel: &Path, args: &[&str], expect: &str) {
    let out = anyboot()
        .arg("plan")
        .arg(kernel)
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&kernel.display().to_string()) || err.starts_with("anyboot: /nonexistent/"),
        "{err}"
    );
    assert!(
        err.contains(expect),
        "{args:?}: expected {expect:?} in {err}"
    );
}

fn od(k: &Path, off: u64, size: u8) -> u64 {
    let out = Command::new("od")
        .args([
            "-An",
            &format!("-tu{size}"),
            "-j",
            &off.to_string(),
            &format!("-N{size}"),
        ])
        .arg(k)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn debian_bzimage_linux_protocol() {
    let Some(k) = kernel_or_skip("cloud") else {
        return;
    };
    let k = k.vmlinuz;
    let initrd = scratch("initrd.img");
    std::fs::write(&initrd, vec![0x5a; 3 << 20]).unwrap();
    let p = plan(
        &k,
        &[
            "--initrd",
            initrd.to_str().unwrap(),
            "--mem",
            "256",
            "--cpus",
            "2",
        ],
    );
    assert_eq!(p["protocol"], "linux64");
    assert_eq!(p["os"]["kind"], "linux");
    let setup_sects = od(&k, 0x1f1, 1);
    let pref = od(&k, 0x258, 4) | (od(&k, 0x25c, 4) << 32);
    let init_size = od(&k, 0x260, 4);
    let initrd_max = od(&k, 0x22c, 4);
    let file_size = std::fs::metadata(&k).unwrap().len();
    let seg = &p["segments"][0];
    assert_eq!(seg["file_offset"].as_u64(), Some((setup_sects + 1) * 512));
    assert_eq!(
        seg["file_size"].as_u64(),
        Some(file_size - (setup_sects + 1) * 512)
    );
    assert_eq!(
        seg["guest_addr"].as_u64(),
        Some(pref),
        "a relocatable kernel runs at pref_address"
    );
    assert_eq!(
        p["entry"].as_u64(),
        Some(pref + 0x200),
        "64-bit entry = load address + 0x200"
    );
    let m = &p["modules"][0];
    let (addr, size) = (m["addr"].as_u64().unwrap(), m["size"].as_u64().unwrap());
    assert_eq!(size, 3 << 20);
    assert_eq!(addr % 4096, 0, "page-aligned initrd");
    assert!(addr >= pref + init_size, "initrd clear of init_size");
    assert!(
        addr + size <= initrd_max + 1,
        "initrd below initrd_addr_max"
    );
    assert!(addr + size <= 256 << 20, "initrd inside RAM");
    assert_eq!(p["cpus"], 2);
    assert_eq!(p["os"]["cmdline_limit"].as_u64(), Some(od(&k, 0x238, 4)));

    // The limits, each named.
    let limit = od(&k, 0x238, 4) as usize;
    let long = "x".repeat(limit + 1);
    plan_fails(
        &k,
        &["--cmdline", &long],
        &format!("accepts at most {limit}"),
    );
    let _ = plan(&k, &["--cmdline", &"x".repeat(limit)]);
    plan_fails(&k, &["--mem", "32"], "--mem gives 32 MiB");
    plan_fails(&k, &["--protocol", "multiboot"], "no multiboot v1 header");
    plan_fails(
        &k,
        &[
            "--protocol",
            "pvh",
            "--os",
            "freebsd",
            "--initrd",
            initrd.to_str().unwrap(),
        ],
        "module 0 as loader metadata",
    );
    let big = scratch("big-initrd.img");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(200 << 20)
        .unwrap();
    plan_fails(
        &k,
        &["--initrd", big.to_str().unwrap(), "--mem", "128"],
        "does not fit",
    );
}

#[test]
fn debian_bzimage_by_pvh_uses_the_inner_vmlinux_segments() {
    let Some(k) = kernel_or_skip("cloud") else {
        return;
    };
    let Some(readelf) = tool_or_skip("readelf") else {
        return;
    };
    let dir = scratch("extract");
    let p = plan(
        &k.vmlinuz,
        &["--protocol", "pvh", "--extract-to", dir.to_str().unwrap()],
    );
    assert_eq!(p["protocol"], "pvh");
    let to = p["extraction"]["to"].as_str().unwrap();
    assert!(to.starts_with(dir.to_str().unwrap()), "{to}");
    assert_eq!(p["boot_image"].as_str(), Some(to));
    // Extract with the shell recipe and compare the PT_LOADs readelf sees.
    let vmlinux = scratch("vmlinux");
    let script = format!(
        r#"K='{k}'; ss=$(od -An -tu1 -j 497 -N1 "$K"); po=$(od -An -tu4 -j 584 -N4 "$K"); pl=$(od -An -tu4 -j 588 -N4 "$K")
tail -c +$(( (ss + 1) * 512 + po + 1 )) "$K" | head -c $((pl - 4)) | lz4 -dc > '{v}'"#,
        k = k.vmlinuz.display(),
        v = vmlinux.display()
    );
    assert!(
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .status()
            .unwrap()
            .success()
    );
    let out = Command::new(readelf)
        .args(["-lW"])
        .arg(&vmlinux)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let loads: Vec<Vec<u64>> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("LOAD"))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(5)
                .map(|f| u64::from_str_radix(f.trim_start_matches("0x"), 16).unwrap())
                .collect()
        })
        .collect();
    let segs = p["segments"].as_array().unwrap();
    assert_eq!(segs.len(), loads.len());
    for (s, l) in segs.iter().zip(&loads) {
        // readelf: Offset VirtAddr PhysAddr FileSiz MemSiz ...
        assert_eq!(s["file_offset"].as_u64(), Some(l[0]));
        assert_eq!(s["guest_addr"].as_u64(), Some(l[2]));
        assert_eq!(s["file_size"].as_u64(), Some(l[3]));
        assert_eq!(s["mem_size"].as_u64(), Some(l[4]));
    }
    let _ = std::fs::remove_file(&vmlinux);
}

#[test]
fn netbsd_profile() {
    let k = scratch("netbsd-MICROVM");
    std::fs::write(&k, netbsd_like()).unwrap();
    let p = plan(&k, &["--disk", "root.img"]);
    assert_eq!(p["protocol"], "pvh");
    assert_eq!(p["entry"], 0x20_0040);
    assert_eq!(p["os"]["kind"], "netbsd");
    assert_eq!(p["os"]["console"], "com");
    assert_eq!(p["os"]["root_device"], "ld0a");
    assert_eq!(p["os"]["virtio"], "cmdline");
    assert_eq!(p["os"]["modern_virtio_mmio"], true);
    assert_eq!(p["os"]["cmdline_limit"], 255);
    assert_eq!(p["os"]["start_info_version"], 1);
    plan_fails(&k, &["--cmdline", &"y".repeat(256)], "accepts at most 255");
    assert_eq!(p["disks"][0]["read_only"], false);
    let p = plan(&k, &["--disk", "root.img,ro"]);
    assert_eq!(p["disks"][0]["read_only"], true);
    plan_fails(&k, &["--protocol", "linux"], "cannot boot by linux");
}

#[test]
fn multiboot_flat_image() {
    let k = scratch("multiboot.bin");
    // Header at 0x40, 0x2000 bytes loaded at 1 MiB, BSS to 0x104000, entry 1 MiB + 16.
    std::fs::write(&k, multiboot_flat(0x40, 0x2000, 0x10_4000)).unwrap();
    let p = plan(&k, &[]);
    assert_eq!(p["protocol"], "multiboot");
    assert_eq!(p["entry"], 0x10_0010);
    let s = &p["segments"][0];
    assert_eq!(s["file_offset"], 0);
    assert_eq!(s["file_size"], 0x2000);
    assert_eq!(s["guest_addr"], 0x10_0000);
    assert_eq!(s["mem_size"], 0x4000);
}

#[test]
fn unbootable_and_bad_options() {
    let k = scratch("pv-only");
    std::fs::write(
        &k,
        build_elf(&ElfSpec {
            note_segments: vec![vec![
                NoteSpec::xen_str(6, "GRUB"),
                NoteSpec::xen_str(8, "generic"),
            ]],
            ..ElfSpec::default()
        }),
    )
    .unwrap();
    plan_fails(&k, &[], "only Xen PV notes");
    let pvh = scratch("pvh");
    std::fs::write(&pvh, netbsd_like()).unwrap();
    plan_fails(&pvh, &["--cpus", "0"], "--cpus 0");
    plan_fails(&pvh, &["--mem", "1"], "--mem 1");
    plan_fails(
        &pvh,
        &["--initrd", "/nonexistent/initrd"],
        "cannot read the initrd",
    );
    // A segment inside the low boot area is refused before any guest runs.
    let low = scratch("low-segment");
    std::fs::write(
        &low,
        build_elf(&ElfSpec {
            loads: vec![LoadSpec {
                paddr: 0x6000,
                vaddr: 0x6000,
                data: vec![0; 64],
                memsz: 0x1000,
                align: 0x1000,
            }],
            note_segments: vec![vec![NoteSpec::xen(18, uint(0x6000, 4, false))]],
            ..ElfSpec::default()
        }),
    )
    .unwrap();
    plan_fails(&low, &[], "overlaps anyboot's boot structures");
}

/// A relocatable bzImage whose pref_address leaves no room for the 64-bit entry at +0x200 is
/// refused, naming the field (it once overflowed; found by tests/hostile_images.rs).
#[test]
fn pref_address_at_the_top_of_the_address_space_is_refused() {
    use anyboot_fixtures::{BzSpec, PvhSpec, bzimage, pvh_elf};
    let img = bzimage(&BzSpec {
        pref_address: u64::MAX,
        ..BzSpec::gzip_of(&pvh_elf(&PvhSpec::default()))
    });
    let k = scratch("bz-pref-address-max");
    std::fs::write(&k, img).unwrap();
    plan_fails(
        &k,
        &["--protocol", "linux"],
        "pref_address 0xffffffffffffffff at 0x258",
    );
}
