//! The ELF note reader on arbitrary bytes: never panics, errors are one line, and every note it
//! returns lies inside the file and inside the note limit.
#![no_main]

use anyboot_fuzz::check_error;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = elfnote::ElfLayout::headers_len(data) {
        check_error("headers_len", &e);
    }
    match elfnote::read_elf(data) {
        Err(e) => check_error("read_elf", &e),
        Ok(img) => {
            for seg in img.layout.note_segments() {
                let end = seg
                    .offset
                    .checked_add(seg.filesz)
                    .expect("note segment end overflows");
                assert!(end <= data.len() as u64, "note segment outside the file");
                assert!(seg.filesz <= elfnote::MAX_NOTE_BLOB);
            }
            let n = &img.notes;
            let _ = (n.pvh_entry(), n.guest_os(), n.build_id(), n.has_xen_pv());
            let _ = img.layout.max_load_align();
            let _ = img.layout.header.machine_name();
        }
    }
});
