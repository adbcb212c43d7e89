//! The bzImage setup header and the whole `inspect` path on arbitrary bytes (the header
//! fields, the payload range, the decompressor and the inner ELF's notes): never panics,
//! errors are one line, and what it reports stays inside the file.
#![no_main]

use anyboot_fuzz::check_error;
use libfuzzer_sys::fuzz_target;
use loader::bzimage::SetupHeader;

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    if let Ok(h) = SetupHeader::parse(data) {
        let _ = (
            h.protocol(),
            h.setup_sectors(),
            h.initrd_addr_max(),
            h.cmdline_size(),
        );
        let _ = (
            h.loadflag_names(),
            h.xloadflag_names(),
            h.has_entry64(),
            h.loaded_high(),
        );
        let _ = loader::bzimage::kernel_version_string(&h, data);
        match h.payload_range(len) {
            Ok(Some((off, n))) => {
                assert!(off.checked_add(u64::from(n)).is_some_and(|e| e <= len));
            }
            Ok(None) => {}
            Err(e) => check_error("payload_range", &e),
        }
    }
    let _ = loader::bzimage::pe_header_offset(data);
    match loader::inspect::inspect(&mut std::io::Cursor::new(data)) {
        Ok(r) => {
            assert_eq!(r.file_size, len);
            let _ = serde_json::to_string(&r).expect("a report always serialises");
        }
        Err(e) => check_error("inspect", &e),
    }
});
