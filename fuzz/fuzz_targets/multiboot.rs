//! The multiboot v1 and v2 header scanners on arbitrary bytes: never panic, and a header found
//! is where the specification says it may be (4/8-byte aligned, inside the search window,
//! checksum zero).
#![no_main]

use libfuzzer_sys::fuzz_target;
use loader::multiboot::{MULTIBOOT_MAGIC, MULTIBOOT_SEARCH, MULTIBOOT2_SEARCH};
use loader::multiboot::{Multiboot2Header, MultibootHeader};

fn word(d: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(d[off..off + 4].try_into().unwrap())
}

fuzz_target!(|data: &[u8]| {
    if let Some(h) = MultibootHeader::find(data) {
        let off = usize::try_from(h.offset).unwrap();
        assert!(off % 4 == 0 && off + 12 <= data.len().min(MULTIBOOT_SEARCH));
        assert_eq!(word(data, off), MULTIBOOT_MAGIC);
        let sum = word(data, off)
            .wrapping_add(word(data, off + 4))
            .wrapping_add(word(data, off + 8));
        assert_eq!(sum, 0);
        let _ = h.entry();
        for p in &h.problems {
            anyboot_fuzz::one_line("multiboot problem", p);
        }
        // A header was found: the a.out kludge and ELF load paths of the planner.
        if let Ok(report) = loader::inspect::inspect(&mut std::io::Cursor::new(data)) {
            let opts = loader::plan::PlanOptions {
                protocol: Some(loader::plan::Protocol::Multiboot),
                ..Default::default()
            };
            match loader::plan::build(std::path::Path::new("/k"), &report, &opts) {
                Ok(plan) => anyboot_fuzz::check_plan(&plan, data.len() as u64),
                Err(e) => anyboot_fuzz::check_error("plan", &e),
            }
        }
    }
    if let Some(h) = Multiboot2Header::find(data) {
        let off = usize::try_from(h.offset).unwrap();
        assert!(off % 8 == 0 && off + 16 <= data.len().min(MULTIBOOT2_SEARCH));
    }
});
