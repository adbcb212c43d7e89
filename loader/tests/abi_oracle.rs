//! The boot ABI definitions against the real C headers: a C program compiled at test time
//! against Xen's `xen/arch-x86/hvm/start_info.h` (Debian libxen-dev) and Linux's
//! `asm/bootparam.h` (Debian linux-libc-dev) prints `sizeof` and `offsetof` for every field
//! the Rust definitions carry, and each must match.

use std::mem::{offset_of, size_of};
use std::process::Command;

use anyboot_fixtures::kernels::tool_or_skip;
use loader::abi::{linux, xen};

/// (C expression, Rust value) pairs.
fn expectations() -> Vec<(&'static str, usize)> {
    macro_rules! pairs {
        ($c:literal, $rust:ty, [$($f:ident),*]) => {{
            let mut v = vec![(concat!("sizeof(struct ", $c, ")"), size_of::<$rust>())];
            $( v.push((concat!("offsetof(struct ", $c, ", ", stringify!($f), ")"), offset_of!($rust, $f))); )*
            v
        }};
    }
    let mut v = Vec::new();
    v.extend(pairs!(
        "hvm_start_info",
        xen::HvmStartInfo,
        [
            magic,
            version,
            flags,
            nr_modules,
            modlist_paddr,
            cmdline_paddr,
            rsdp_paddr,
            memmap_paddr,
            memmap_entries,
            reserved
        ]
    ));
    v.extend(pairs!(
        "hvm_modlist_entry",
        xen::HvmModlistEntry,
        [paddr, size, cmdline_paddr, reserved]
    ));
    v.extend(pairs!(
        "hvm_memmap_table_entry",
        xen::HvmMemmapTableEntry,
        [addr, size, reserved]
    ));
    v.push((
        "offsetof(struct hvm_memmap_table_entry, type)",
        offset_of!(xen::HvmMemmapTableEntry, type_),
    ));
    v.extend(pairs!(
        "setup_header",
        linux::SetupHeader,
        [
            setup_sects,
            root_flags,
            syssize,
            ram_size,
            vid_mode,
            root_dev,
            boot_flag,
            jump,
            header,
            version,
            realmode_swtch,
            start_sys_seg,
            kernel_version,
            type_of_loader,
            loadflags,
            setup_move_size,
            code32_start,
            ramdisk_image,
            ramdisk_size,
            bootsect_kludge,
            heap_end_ptr,
            ext_loader_ver,
            ext_loader_type,
            cmd_line_ptr,
            initrd_addr_max,
            kernel_alignment,
            relocatable_kernel,
            min_alignment,
            xloadflags,
            cmdline_size,
            hardware_subarch,
            hardware_subarch_data,
            payload_offset,
            payload_length,
            setup_data,
            pref_address,
            init_size,
            handover_offset,
            kernel_info_offset
        ]
    ));
    v.extend(pairs!(
        "boot_e820_entry",
        linux::BootE820Entry,
        [addr, size]
    ));
    v.push((
        "offsetof(struct boot_e820_entry, type)",
        offset_of!(linux::BootE820Entry, type_),
    ));
    v.extend(pairs!(
        "boot_params",
        linux::BootParams,
        [
            screen_info,
            apm_bios_info,
            tboot_addr,
            ist_info,
            acpi_rsdp_addr,
            hd0_info,
            hd1_info,
            sys_desc_table,
            olpc_ofw_header,
            ext_ramdisk_image,
            ext_ramdisk_size,
            ext_cmd_line_ptr,
            cc_blob_address,
            edid_info,
            efi_info,
            alt_mem_k,
            scratch,
            e820_entries,
            eddbuf_entries,
            edd_mbr_sig_buf_entries,
            kbd_status,
            secure_boot,
            sentinel,
            hdr,
            edd_mbr_sig_buffer,
            e820_table,
            eddbuf
        ]
    ));
    v
}

#[test]
fn layouts_match_the_c_headers() {
    let Some(cc) = tool_or_skip("cc") else {
        return;
    };
    for header in [
        "/usr/include/xen/arch-x86/hvm/start_info.h",
        "/usr/include/x86_64-linux-gnu/asm/bootparam.h",
    ] {
        if anyboot_fixtures::oracle::data_or_skip(header).is_none() {
            return;
        }
    }
    let exp = expectations();
    let mut c = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include <stdint.h>\n\
         #include <xen/arch-x86/hvm/start_info.h>\n#include <asm/bootparam.h>\n\
         int main(void) {\n",
    );
    for (expr, _) in &exp {
        c.push_str(&format!("  printf(\"%zu\\n\", (size_t)({expr}));\n"));
    }
    c.push_str("  return 0;\n}\n");
    let dir = std::env::temp_dir().join(format!("anyboot-abi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("abi.c");
    let bin = dir.join("abi");
    std::fs::write(&src, c).unwrap();
    let out = Command::new(cc)
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(&bin).output().unwrap();
    assert!(out.status.success());
    let theirs: Vec<usize> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(theirs.len(), exp.len());
    for ((expr, ours), theirs) in exp.iter().zip(&theirs) {
        assert_eq!(
            ours, theirs,
            "{expr}: Rust says {ours}, the C header says {theirs}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
