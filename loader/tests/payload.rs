//! Integration tests of `loader::payload` against the real compressors.
//!
//! Every stream is made at test time with the system tool, invoked the way the
//! kernel build invokes it. A missing tool makes its cases skip loudly, or fail
//! when `ANYBOOT_REQUIRE_ORACLES=1` is set.

// Test images are small: their sizes always fit the narrower integer types.
#![allow(clippy::cast_possible_truncation)]

use loader::payload::{Compression, PayloadError, PayloadReader};
use proptest::prelude::*;
use std::io::{self, Read, Write};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Deterministic xorshift64* generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[7]
    }
}

/// About `size` bytes that look a little like a kernel: an ELF header, then
/// compressible but non-trivial data (text, x86-looking calls, small random
/// runs), then a 600 KiB stretch of random bytes (so block formats such as
/// lzop have to store at least one block uncompressed).
fn sample(size: usize) -> Vec<u8> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut data = Vec::with_capacity(size);
    // ELF64 header, x86-64, executable.
    data.extend_from_slice(b"\x7fELF\x02\x01\x01\x00");
    data.extend_from_slice(&[0; 8]);
    data.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    data.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    data.extend_from_slice(&1u32.to_le_bytes());
    data.extend_from_slice(&0x0100_0000u64.to_le_bytes()); // entry
    data.extend_from_slice(&64u64.to_le_bytes()); // phoff
    data.extend_from_slice(&0u64.to_le_bytes());
    data.extend_from_slice(&[0, 0, 0, 0, 64, 0, 56, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
    let random_tail = if size >= 1024 * 1024 {
        600 * 1024
    } else {
        size / 8
    };
    let texts: [&[u8]; 4] = [
        b"Linux version 6.6.0 (builder@host) (gcc version 13.2.0) #1 SMP PREEMPT_DYNAMIC\n",
        b"kernel/sched/core.c: scheduler tick, cpu %d load %lu\n",
        b"\x55\x48\x89\xe5\x41\x57\x41\x56\x41\x55\x41\x54\x53\x48\x83\xec\x18",
        b"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
    ];
    while data.len() < size - random_tail {
        match rng.next() % 8 {
            0..=2 => {
                let text = texts[usize::from(rng.byte()) % texts.len()];
                data.extend_from_slice(text);
            }
            3 | 4 => {
                // call rel32, the thing the x86 BCJ filter rewrites.
                data.push(0xE8);
                data.extend_from_slice(&(rng.next() % 0x10_0000).to_le_bytes()[..4]);
            }
            5 => {
                let n = rng.next() % 24;
                data.extend((0..n).map(|_| rng.byte()));
            }
            _ => {
                let n = rng.next() % 48 + 4;
                let b = rng.byte();
                data.extend(std::iter::repeat_n(b, usize::try_from(n).unwrap()));
            }
        }
    }
    data.truncate(size - random_tail);
    data.extend((0..random_tail).map(|_| rng.byte()));
    data
}

fn original() -> &'static [u8] {
    static DATA: OnceLock<Vec<u8>> = OnceLock::new();
    DATA.get_or_init(|| sample(3 * 1024 * 1024))
}

fn small_original() -> &'static [u8] {
    static DATA: OnceLock<Vec<u8>> = OnceLock::new();
    DATA.get_or_init(|| sample(48 * 1024))
}

/// How the kernel build runs each compressor (plus a few variants).
const RECIPES: [(Compression, &str, &[&str]); 10] = [
    (Compression::Gzip, "gzip", &["-n", "-9", "-c"]),
    (Compression::Bzip2, "bzip2", &["-9", "-c"]),
    (Compression::Lzma, "lzma", &["-9", "-c"]),
    (
        Compression::Xz,
        "xz",
        &[
            "--check=crc32",
            "--x86",
            "--lzma2=preset=6,dict=32MiB",
            "-c",
        ],
    ),
    (
        Compression::Xz,
        "xz",
        &[
            "--check=crc32",
            "--x86",
            "--lzma2=preset=9,dict=32MiB",
            "-c",
        ],
    ),
    (Compression::Lzo, "lzop", &["-9", "-c"]),
    (Compression::Lzo, "lzop", &["--crc32", "-1", "-c"]),
    (Compression::Lz4, "lz4", &["-l", "-9", "-", "-"]),
    (Compression::Zstd, "zstd", &["-19", "-c", "-"]),
    (Compression::Zstd, "zstd", &["-22", "--ultra", "-c", "-"]),
];

/// One compressed stream made by a real tool.
struct Case {
    label: String,
    compression: Compression,
    original: &'static [u8],
    compressed: Vec<u8>,
}

fn require_oracles() -> bool {
    std::env::var("ANYBOOT_REQUIRE_ORACLES").is_ok_and(|v| v == "1")
}

/// Whether `tool` can be run; when not, skips loudly or fails if required.
fn have_tool(tool: &str) -> bool {
    static WARNED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let found = Command::new(tool)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            !require_oracles(),
            "{tool} not installed but ANYBOOT_REQUIRE_ORACLES=1"
        );
        let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
        if !warned.iter().any(|t| t == tool) {
            warned.push(tool.to_owned());
            // Straight to the process's stderr: libtest captures `eprintln!`.
            let _ = writeln!(io::stderr(), "SKIPPED: {tool} not installed");
        }
    }
    found
}

fn compress(tool: &str, args: &[&str], data: &[u8]) -> Vec<u8> {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let owned = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&owned));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        out.status
    );
    out.stdout
}

fn make_cases(original: &'static [u8]) -> Vec<Case> {
    let mut cases = Vec::new();
    for (compression, tool, args) in RECIPES {
        if !have_tool(tool) {
            continue;
        }
        cases.push(Case {
            label: format!("{tool} {}", args.join(" ")),
            compression,
            original,
            compressed: compress(tool, args, original),
        });
    }
    cases
}

/// The 3 MiB sample, compressed by each available tool.
fn cases() -> &'static [Case] {
    static CASES: OnceLock<Vec<Case>> = OnceLock::new();
    CASES.get_or_init(|| make_cases(original()))
}

/// The 48 KiB sample, compressed by each available tool (for fuzzing).
fn small_cases() -> &'static [Case] {
    static CASES: OnceLock<Vec<Case>> = OnceLock::new();
    CASES.get_or_init(|| make_cases(small_original()))
}

/// The `PayloadError` inside an error from `PayloadReader::read`.
fn payload_error(e: &io::Error) -> &PayloadError {
    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<PayloadError>())
        .unwrap_or_else(|| panic!("not a PayloadError: {e:?}"))
}

/// Reads everything, returning the output and how reading ended.
fn decode(
    compression: Compression,
    input: &[u8],
    limit: u64,
) -> (Vec<u8>, u64, Result<(), io::Error>) {
    let mut reader = PayloadReader::new(compression, input, limit).expect("supported");
    assert_eq!(reader.compression(), compression);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 7919]; // odd size, to cross block boundaries unevenly
    let result = loop {
        match reader.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                assert!(reader.produced() <= limit, "produced past the limit");
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    assert_eq!(reader.produced(), out.len() as u64);
    assert!(reader.produced() <= limit);
    (out, reader.produced(), result)
}

#[test]
fn every_tool_round_trips() {
    let cases = cases();
    assert!(!cases.is_empty() || !require_oracles());
    for case in cases {
        let limit = case.original.len() as u64;
        let (out, produced, result) = decode(case.compression, &case.compressed, limit);
        if let Err(e) = &result {
            panic!("{}: {e} ({:?})", case.label, std::error::Error::source(e));
        }
        assert_eq!(produced, limit, "{}", case.label);
        assert!(out == case.original, "{}: output differs", case.label);
    }
}

#[test]
fn detect_recognises_each_tool() {
    for case in cases() {
        assert_eq!(
            Compression::detect(&case.compressed),
            Some(case.compression),
            "{}",
            case.label
        );
    }
    assert_eq!(Compression::detect(b""), None);
    assert_eq!(Compression::detect(b"\x7fELF"), None);
    assert_eq!(Compression::detect(&[0x1F]), None);
    assert_eq!(
        Compression::detect(&[0x1F, 0x9E, 0]),
        Some(Compression::Gzip)
    );
}

#[test]
fn names_and_support() {
    let names: Vec<&str> = Compression::ALL.iter().map(|c| c.name()).collect();
    assert_eq!(names, ["gzip", "bzip2", "lzma", "xz", "lzo", "lz4", "zstd"]);
    for c in Compression::ALL {
        assert_eq!(c.to_string(), c.name());
        assert_eq!(format!("{c:?}").to_lowercase(), c.name());
    }
    assert_eq!(Compression::Gzip.supported(), cfg!(feature = "gzip"));
    assert_eq!(Compression::Bzip2.supported(), cfg!(feature = "bzip2"));
    assert_eq!(Compression::Lzma.supported(), cfg!(feature = "lzma"));
    assert_eq!(Compression::Xz.supported(), cfg!(feature = "xz"));
    assert_eq!(Compression::Lzo.supported(), cfg!(feature = "lzo"));
    assert_eq!(Compression::Lz4.supported(), cfg!(feature = "lz4"));
    assert_eq!(Compression::Zstd.supported(), cfg!(feature = "zstd"));
}

#[test]
fn one_byte_under_the_limit_is_too_large() {
    for case in cases() {
        let limit = case.original.len() as u64 - 1;
        let (out, produced, result) = decode(case.compression, &case.compressed, limit);
        let e = result.expect_err(&case.label);
        assert!(
            matches!(payload_error(&e), PayloadError::TooLarge { limit: l } if *l == limit),
            "{}: {e}",
            case.label
        );
        assert_eq!(produced, limit, "{}", case.label);
        assert!(out == case.original[..out.len()], "{}", case.label);
    }
}

#[test]
fn small_limits_stop_early() {
    for case in cases() {
        for limit in [0u64, 1, 4096, 300_000] {
            let (_, produced, result) = decode(case.compression, &case.compressed, limit);
            let e = result.expect_err(&case.label);
            assert!(
                matches!(payload_error(&e), PayloadError::TooLarge { .. }),
                "{}: {e}",
                case.label
            );
            assert_eq!(produced, limit, "{}", case.label);
        }
    }
}

#[test]
fn reads_after_an_error_keep_failing() {
    for case in cases() {
        let mut reader = PayloadReader::new(case.compression, &case.compressed[..], 10).unwrap();
        let mut sink = Vec::new();
        assert!(reader.read_to_end(&mut sink).is_err());
        let again = reader.read(&mut [0u8; 16]).expect_err(&case.label);
        assert!(matches!(
            payload_error(&again),
            PayloadError::TooLarge { limit: 10 }
        ));

        let cut = &case.compressed[..case.compressed.len() / 2];
        let mut reader = PayloadReader::new(case.compression, cut, u64::MAX).unwrap();
        assert!(reader.read_to_end(&mut sink).is_err(), "{}", case.label);
        let again = reader.read(&mut [0u8; 16]).expect_err(&case.label);
        assert!(
            matches!(payload_error(&again), PayloadError::AlreadyFailed { .. }),
            "{}",
            case.label
        );
    }
}

#[test]
fn truncated_streams_are_errors() {
    for case in cases() {
        let len = case.compressed.len();
        for cut in [0, 1, 3, 10, 40, len / 2, len - 5, len - 1] {
            let input = &case.compressed[..cut];
            let (out, _, result) = decode(case.compression, input, u64::MAX);
            let e = match result {
                Err(e) => e,
                Ok(()) => panic!(
                    "{}: cut at {cut} of {len} decoded without error ({} bytes)",
                    case.label,
                    out.len()
                ),
            };
            let err = payload_error(&e);
            let PayloadError::Decode { compression, .. } = err else {
                panic!("{}: not a decode error: {err}", case.label);
            };
            assert_eq!(*compression, case.compression, "{}", case.label);
            assert!(out == case.original[..out.len()], "{}", case.label);
        }
    }
}

#[test]
fn decode_errors_read_as_one_line_chain() {
    let Some(case) = cases().iter().find(|c| c.compression == Compression::Lzo) else {
        return;
    };
    let mut bad = case.compressed.clone();
    bad[12] ^= 0xFF; // inside the header: the header checksum no longer matches
    let (_, _, result) = decode(Compression::Lzo, &bad, u64::MAX);
    let e = result.unwrap_err();
    let err = payload_error(&e);
    let top = err.to_string();
    assert_eq!(top, "corrupt lzo payload after 0 bytes of output");
    let source = std::error::Error::source(err)
        .expect("source kept")
        .to_string();
    assert!(source.starts_with("bad lzop header at offset "), "{source}");
    assert!(!top.contains(&source));
}

/// The bzImage keeps the uncompressed size in the 4 bytes after the payload.
/// A caller that forgets to strip it must get an error or the data, quickly
/// and without a huge allocation (notably lz4, whose legacy frame has no end
/// marker and reads the trailer as a block size).
#[test]
fn size_trailer_left_on_does_not_hang() {
    for case in cases() {
        let mut with_trailer = case.compressed.clone();
        with_trailer.extend_from_slice(&u32::try_from(case.original.len()).unwrap().to_le_bytes());
        let limit = case.original.len() as u64 + 1024;
        let (out, _, _) = decode(case.compression, &with_trailer, limit);
        assert!(out == case.original[..out.len()], "{}", case.label);
    }
    // Adversarial trailers for lz4: a huge "block", an "uncompressed" flag, the magic.
    if let Some(case) = cases().iter().find(|c| c.compression == Compression::Lz4) {
        for trailer in [
            0x00FF_FFFFu32,
            0x7FFF_FFFF,
            0x8000_0010,
            0xFFFF_FFFF,
            0x184C_2102,
        ] {
            let mut input = case.compressed.clone();
            input.extend_from_slice(&trailer.to_le_bytes());
            let (out, _, _) = decode(case.compression, &input, 64 * 1024 * 1024);
            assert!(out == case.original[..out.len()]);
        }
    }
}

// ---------------------------------------------------------------------------
// lzop container paths that the lzop tool does not exercise, built by hand
// around the independent LZO1X-1 encoder of lzokay-native.

#[cfg(feature = "lzo")]
fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

#[cfg(feature = "lzo")]
fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &x in data {
        c ^= u32::from(x);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[cfg(feature = "lzo")]
const F_ADLER32_D: u32 = 0x1;
#[cfg(feature = "lzo")]
const F_ADLER32_C: u32 = 0x2;
#[cfg(feature = "lzo")]
const F_H_EXTRA_FIELD: u32 = 0x40;
#[cfg(feature = "lzo")]
const F_CRC32_D: u32 = 0x100;
#[cfg(feature = "lzo")]
const F_CRC32_C: u32 = 0x200;
#[cfg(feature = "lzo")]
const F_H_CRC32: u32 = 0x1000;

/// An lzop file of `data` in 256 KiB blocks, with the given flags.
#[cfg(feature = "lzo")]
fn lzop_file(data: &[u8], flags: u32, name: &[u8]) -> Vec<u8> {
    let mut out = vec![0x89, 0x4C, 0x5A, 0x4F, 0x00, 0x0D, 0x0A, 0x1A, 0x0A];
    let mut header = Vec::new();
    header.extend_from_slice(&0x1040u16.to_be_bytes());
    header.extend_from_slice(&0x20A0u16.to_be_bytes());
    header.extend_from_slice(&0x0940u16.to_be_bytes());
    header.push(1); // LZO1X-1
    header.push(5);
    header.extend_from_slice(&flags.to_be_bytes());
    header.extend_from_slice(&0o100644u32.to_be_bytes());
    header.extend_from_slice(&0x6500_0000u32.to_be_bytes());
    header.extend_from_slice(&0u32.to_be_bytes());
    header.push(u8::try_from(name.len()).unwrap());
    header.extend_from_slice(name);
    let sum = if flags & F_H_CRC32 != 0 {
        crc32(&header)
    } else {
        adler32(&header)
    };
    out.extend_from_slice(&header);
    out.extend_from_slice(&sum.to_be_bytes());
    if flags & F_H_EXTRA_FIELD != 0 {
        out.extend_from_slice(&5u32.to_be_bytes());
        out.extend_from_slice(b"extra");
        out.extend_from_slice(&0u32.to_be_bytes());
    }
    for block in data.chunks(256 * 1024) {
        let mut packed = lzokay_native::compress(block).unwrap();
        if packed.len() >= block.len() {
            packed = block.to_vec();
        }
        out.extend_from_slice(&u32::try_from(block.len()).unwrap().to_be_bytes());
        out.extend_from_slice(&u32::try_from(packed.len()).unwrap().to_be_bytes());
        if flags & F_ADLER32_D != 0 {
            out.extend_from_slice(&adler32(block).to_be_bytes());
        }
        if flags & F_CRC32_D != 0 {
            out.extend_from_slice(&crc32(block).to_be_bytes());
        }
        if packed.len() < block.len() {
            if flags & F_ADLER32_C != 0 {
                out.extend_from_slice(&adler32(&packed).to_be_bytes());
            }
            if flags & F_CRC32_C != 0 {
                out.extend_from_slice(&crc32(&packed).to_be_bytes());
            }
        }
        out.extend_from_slice(&packed);
    }
    out.extend_from_slice(&0u32.to_be_bytes());
    out
}

#[cfg(feature = "lzo")]
#[test]
fn lzop_container_variants() {
    let data = original();
    for flags in [
        0,
        F_ADLER32_D,
        F_ADLER32_D | F_ADLER32_C,
        F_CRC32_D | F_CRC32_C | F_H_CRC32,
        F_ADLER32_D | F_CRC32_D | F_ADLER32_C | F_CRC32_C | F_H_EXTRA_FIELD,
    ] {
        let file = lzop_file(data, flags, b"vmlinux.bin");
        assert_eq!(Compression::detect(&file), Some(Compression::Lzo));
        let (out, _, result) = decode(Compression::Lzo, &file, data.len() as u64);
        result.unwrap_or_else(|e| panic!("flags {flags:#x}: {e}"));
        assert!(out == data, "flags {flags:#x}");
    }
}

#[cfg(feature = "lzo")]
#[test]
fn lzop_rejects_bad_blocks() {
    let data = &original()[..100_000];
    let good = lzop_file(data, F_ADLER32_D | F_ADLER32_C, b"");
    let header_len = 9 + 2 + 2 + 2 + 1 + 1 + 4 + 4 + 4 + 4 + 1 + 4;
    let block_error = |file: &[u8]| -> String {
        let (_, _, result) = decode(Compression::Lzo, file, u64::MAX);
        let e = result.expect_err("bad lzop block accepted");
        std::error::Error::source(payload_error(&e))
            .unwrap()
            .to_string()
    };

    // Uncompressed size beyond 256 KiB.
    let mut file = good.clone();
    file[header_len..header_len + 4].copy_from_slice(&(256u32 * 1024 + 1).to_be_bytes());
    assert!(block_error(&file).contains("larger than 256 KiB"));

    // Compressed size larger than the uncompressed size.
    let mut file = good.clone();
    file[header_len + 4..header_len + 8].copy_from_slice(&200_000u32.to_be_bytes());
    assert!(block_error(&file).contains("compressed block size"));

    // Corrupt data: a checksum catches it (or the decoder does).
    let mut file = good.clone();
    file[header_len + 20] ^= 0x55;
    assert!(block_error(&file).starts_with("bad lzop block"));

    // No end marker.
    let file = &good[..good.len() - 4];
    assert!(block_error(file).contains("missing end-of-stream marker"));

    // Wrong method.
    let mut file = good.clone();
    file[15] = 0x80;
    assert!(block_error(&file).contains("not lzo1x"));
}

// ---------------------------------------------------------------------------
// Hostile input: nothing may panic, hang, or produce past the limit.

const MAGICS: [(Compression, &[u8]); 8] = [
    (Compression::Gzip, &[0x1F, 0x8B]),
    (Compression::Gzip, &[0x1F, 0x8B, 0x08, 0x00]),
    (Compression::Bzip2, b"BZh9"),
    (Compression::Lzma, &[0x5D, 0x00, 0x00]),
    (Compression::Xz, &[0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]),
    (
        Compression::Lzo,
        &[0x89, 0x4C, 0x5A, 0x4F, 0x00, 0x0D, 0x0A, 0x1A, 0x0A],
    ),
    (Compression::Lz4, &[0x02, 0x21, 0x4C, 0x18]),
    (Compression::Zstd, &[0x28, 0xB5, 0x2F, 0xFD]),
];

fn check_hostile(compression: Compression, input: &[u8], limit: u64) {
    let (_, produced, result) = decode(compression, input, limit);
    assert!(produced <= limit);
    if let Err(e) = result {
        // Every failure is a PayloadError the caller can report.
        let _ = payload_error(&e);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn garbage_after_each_magic(
        which in 0..MAGICS.len(),
        tail in proptest::collection::vec(any::<u8>(), 0..4096),
    ) {
        let (compression, magic) = MAGICS[which];
        let mut input = magic.to_vec();
        input.extend_from_slice(&tail);
        check_hostile(compression, &input, 1024 * 1024);
    }

    #[cfg(feature = "lzo")]
    #[test]
    fn lzo_garbage_blocks(
        flags in prop_oneof![Just(0u32), Just(F_ADLER32_D), Just(F_CRC32_D | F_CRC32_C)],
        dst_len in 1u32..4096,
        block in proptest::collection::vec(any::<u8>(), 1..4096),
    ) {
        // A valid header, then a block of garbage LZO1X data that passes the
        // size checks, so the LZO1X decoder itself sees hostile input.
        let mut file = lzop_file(b"", flags, b"");
        file.truncate(file.len() - 4);
        let src_len = u32::try_from(block.len()).unwrap().min(dst_len);
        file.extend_from_slice(&dst_len.to_be_bytes());
        file.extend_from_slice(&src_len.to_be_bytes());
        if flags & F_ADLER32_D != 0 { file.extend_from_slice(&[0; 4]); }
        if flags & F_CRC32_D != 0 { file.extend_from_slice(&[0; 4]); }
        if flags & F_CRC32_C != 0 && src_len < dst_len {
            file.extend_from_slice(&crc32(&block[..src_len as usize]).to_be_bytes());
        }
        file.extend_from_slice(&block);
        check_hostile(Compression::Lzo, &file, 1024 * 1024);
    }

    #[test]
    fn corrupted_real_streams(
        which in 0usize..64,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let cases = small_cases();
        if !cases.is_empty() {
            let case = &cases[which % cases.len()];
            let mut input = case.compressed.clone();
            for (at, xor) in edits {
                let i = at.index(input.len());
                input[i] ^= xor;
            }
            if let Some(cut) = cut {
                input.truncate(cut.index(input.len() + 1));
            }
            check_hostile(case.compression, &input, case.original.len() as u64 + 4096);
        }
    }
}
