//! Plan building from arbitrary images and options, then the boot structures `run` would write:
//! never panics, errors are one line, and an accepted plan keeps every promise
//! `anyboot_fuzz::check_plan` checks (in RAM, inside the file, no overlaps).
//!
//! Input layout (fixed, so that seed images stay images): 16 option bytes, then `cmdline_len`
//! bytes of command line, then the image.
//! - byte 0: which options are set (bit 0 mem, 1 cpus, 2 protocol, 3 os, 4 command line,
//!   5 initrd);
//! - bytes 1–2: memory in MiB; 3: vCPUs; 4: protocol; 5: OS; 6–9: initrd size in KiB; 10:
//!   disks; 11: command line length.
#![no_main]

use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use loader::plan::{Disk, OsKind, PlanOptions, Protocol};

fuzz_target!(|data: &[u8]| {
    let Some((o, rest)) = data.split_at_checked(16) else {
        return;
    };
    let Some((cmd, image)) = rest.split_at_checked(usize::from(o[11])) else {
        return;
    };
    let set = |bit: u8| o[0] & (1 << bit) != 0;
    let report = match loader::inspect::inspect(&mut std::io::Cursor::new(image)) {
        Ok(r) => r,
        Err(e) => return anyboot_fuzz::check_error("inspect", &e),
    };
    let protocols = [
        Protocol::Pvh,
        Protocol::Linux64,
        Protocol::Linux32,
        Protocol::Multiboot,
    ];
    let oses = [
        OsKind::Linux,
        OsKind::Netbsd,
        OsKind::Freebsd,
        OsKind::Generic,
    ];
    let initrd_kib = u64::from(u32::from_le_bytes([o[6], o[7], o[8], o[9]]));
    let opts = PlanOptions {
        initrd: set(5).then(|| (PathBuf::from("/initrd"), initrd_kib << 10)),
        cmdline: set(4).then(|| String::from_utf8_lossy(cmd).into_owned()),
        mem_mib: set(0).then(|| u64::from(u16::from_le_bytes([o[1], o[2]]))),
        cpus: set(1).then(|| u32::from(o[3])),
        disks: (0..o[10] % 4)
            .map(|i| Disk {
                path: PathBuf::from(format!("/d{i}")),
                read_only: i % 2 == 0,
            })
            .collect(),
        protocol: set(2).then(|| protocols[usize::from(o[4]) % 4]),
        os: set(3).then(|| oses[usize::from(o[5]) % 4]),
        name: None,
        extract_dir: Some(PathBuf::from("/tmp/x")),
    };
    match loader::plan::build(Path::new("/k"), &report, &opts) {
        Ok(plan) => anyboot_fuzz::check_plan(&plan, image.len() as u64),
        Err(e) => anyboot_fuzz::check_error("plan", &e),
    }
});
