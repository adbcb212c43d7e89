//! Writing the inner vmlinux of a bzImage to the path a plan names, for backends that boot it by
//! PVH from a file (QEMU, Firecracker, Cloud Hypervisor cannot decompress a bzImage for PVH).

use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;

use loader::inspect::Report;
use loader::payload::{Compression, PayloadReader};
use loader::plan::Extraction;

/// Why extraction failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// The report has no payload to extract.
    #[error("{0}: the bzImage has no payload to extract")]
    NoPayload(PathBuf),
    /// Reading the bzImage or writing the vmlinux failed.
    #[error("{path}: {what}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The payload decoded to a size other than its trailer says.
    #[error("{path}: the payload decoded to {got} bytes, its trailer says {want}")]
    SizeMismatch {
        /// The bzImage.
        path: PathBuf,
        /// Bytes decoded.
        got: u64,
        /// Bytes declared.
        want: u64,
    },
    /// The decoder refused the payload.
    #[error("{path}: {compression} payload")]
    Payload {
        /// The bzImage.
        path: PathBuf,
        /// Its format.
        compression: Compression,
        /// The decoder's complaint.
        #[source]
        source: loader::payload::PayloadError,
    },
}

/// Make sure `e.to` holds the inner vmlinux of `e.from`; returns `true` if it was written now,
/// `false` if an existing file (same build-id key in its name, same size) was reused. The file
/// is written under a temporary name and renamed, so a crash never leaves a partial vmlinux.
pub fn ensure_extracted(e: &Extraction, report: &Report) -> Result<bool, ExtractError> {
    let io_err = |path: &PathBuf, what: &'static str| {
        let path = path.clone();
        move |source| ExtractError::Io { path, what, source }
    };
    if fs::metadata(&e.to).is_ok_and(|m| m.is_file() && m.len() == e.size) {
        return Ok(false);
    }
    let bz = report
        .bzimage
        .as_ref()
        .ok_or_else(|| ExtractError::NoPayload(e.from.clone()))?;
    let (Some(offset), Some(length), Some(compression)) =
        (bz.payload_offset, bz.payload_length, bz.compression)
    else {
        return Err(ExtractError::NoPayload(e.from.clone()));
    };
    if let Some(dir) = e.to.parent() {
        fs::create_dir_all(dir)
            .map_err(io_err(&dir.to_path_buf(), "cannot create the directory"))?;
    }
    let src = fs::File::open(&e.from).map_err(io_err(&e.from, "cannot open"))?;
    let mut dec =
        PayloadReader::at(src, offset, length, compression, e.size).map_err(|source| {
            ExtractError::Payload {
                path: e.from.clone(),
                compression,
                source,
            }
        })?;
    let tmp = e.to.with_extension(format!("tmp{}", std::process::id()));
    let result = (|| {
        let mut out =
            io::BufWriter::new(fs::File::create(&tmp).map_err(io_err(&tmp, "cannot create"))?);
        let got = io::copy(&mut dec, &mut out).map_err(io_err(&e.from, "decoding the payload"))?;
        out.flush().map_err(io_err(&tmp, "cannot write"))?;
        if got != e.size {
            return Err(ExtractError::SizeMismatch {
                path: e.from.clone(),
                got,
                want: e.size,
            });
        }
        fs::rename(&tmp, &e.to).map_err(io_err(&e.to, "cannot rename into place"))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| true)
}
