//! Refusals that the CLI cannot reach (argv cannot carry a NUL; a regular file always seeks),
//! fed directly to the library.

use std::io::{self, Cursor, Read, Seek, SeekFrom};

use anyboot_fixtures::{PvhSpec, pvh_elf};
use loader::inspect::inspect;
use loader::payload::{Compression, PayloadError, PayloadReader};
use loader::plan::{PlanError, PlanOptions, build};

#[test]
fn a_nul_in_the_command_line_is_refused_with_its_offset() {
    let report = inspect(&mut Cursor::new(pvh_elf(&PvhSpec::default()))).unwrap();
    let opts = PlanOptions {
        cmdline: Some("console=ttyS0\0x".into()),
        ..PlanOptions::default()
    };
    let err = build("vmlinux".as_ref(), &report, &opts).unwrap_err();
    assert_eq!(err, PlanError::CmdlineNul(13));
    assert_eq!(
        err.to_string(),
        "command line contains a NUL byte at offset 13"
    );
}

/// A reader that cannot seek, like a pipe.
struct NoSeek;

impl Read for NoSeek {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Ok(0)
    }
}

impl Seek for NoSeek {
    fn seek(&mut self, _: SeekFrom) -> io::Result<u64> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "illegal seek"))
    }
}

#[test]
fn a_payload_that_cannot_be_reached_says_where() {
    let err = PayloadReader::at(NoSeek, 0x52cc, 100, Compression::Gzip, 1 << 20).unwrap_err();
    assert!(matches!(err, PayloadError::Seek { offset: 0x52cc, .. }));
    assert_eq!(
        err.to_string(),
        "cannot seek to the payload at offset 0x52cc"
    );
}
