//! Every payload decompressor on arbitrary streams, with an arbitrary output limit: never
//! panics, never produces more than the limit, and after an error keeps failing.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use loader::payload::{Compression, PayloadReader};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let Some((lim, stream)) = rest.split_at_checked(2) else {
        return;
    };
    let compression = Compression::ALL[usize::from(sel) % Compression::ALL.len()];
    // Up to 256 KiB of output: enough to reach every decoder state, small enough to stay fast.
    let limit = u64::from(u16::from_le_bytes([lim[0], lim[1]])) << ((sel >> 4) % 3);
    let _ = Compression::detect(stream);
    let Ok(mut dec) = PayloadReader::new(compression, stream, limit) else {
        return;
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        match dec.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                total += n as u64;
                assert!(
                    total <= limit,
                    "{compression}: {total} bytes past the limit {limit}"
                );
                assert_eq!(total, dec.produced());
            }
            Err(e) => {
                anyboot_fuzz::one_line("payload", &e.to_string());
                // Fused: the decoder is never driven again after an error.
                assert!(
                    dec.read(&mut buf).is_err(),
                    "{compression}: read after an error succeeded"
                );
                break;
            }
        }
    }
});
