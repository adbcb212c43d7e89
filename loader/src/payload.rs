//! Streaming decompression of a bzImage's protected-mode payload.
//!
//! Linux compresses the payload with one of seven formats (see
//! [`Compression`]). [`PayloadReader`] wraps the compressed bytes in the
//! matching pure-Rust decoder and caps the decompressed output at a limit, so
//! hostile input can neither panic the decoder nor make it produce or allocate
//! without bound.
//!
//! Errors from a decoder come out of [`Read::read`] as an [`io::Error`] of kind
//! [`io::ErrorKind::InvalidData`] whose inner error is a [`PayloadError`]
//! (downcast with [`io::Error::get_ref`]).

use std::fmt;
use std::io::{self, Read};

/// Largest LZMA/XZ dictionary the decoders accept, in KiB (256 MiB).
///
/// The kernel's `lzma -9` uses 64 MiB and `scripts/xz_wrap.sh` 32 MiB.
#[cfg(any(feature = "lzma", feature = "xz"))]
const LZMA_MEM_LIMIT_KB: u32 = 256 * 1024;

/// Largest zstd window the decoder accepts (128 MiB, what `zstd -22 --ultra` may use).
#[cfg(feature = "zstd")]
const ZSTD_MAX_WINDOW: u64 = 128 * 1024 * 1024;

/// Read-ahead buffer put in front of decoders that read their input in small pieces.
#[cfg(any(
    feature = "lzma",
    feature = "xz",
    feature = "lzo",
    feature = "lz4",
    feature = "zstd"
))]
const INPUT_BUFFER: usize = 64 * 1024;

/// A payload compression format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// gzip (`gzip -n -9`), magic `1F 8B` (or the old `1F 9E`).
    Gzip,
    /// bzip2 (`bzip2 -9`), magic `BZh`.
    Bzip2,
    /// The ".lzma alone" format (`lzma -9`), recognised by `5D 00 00`.
    Lzma,
    /// xz with the x86 BCJ filter (`scripts/xz_wrap.sh`), magic `FD 37 7A 58 5A 00`.
    Xz,
    /// The lzop container (`lzop -9`) holding LZO1X blocks, magic `89 4C 5A 4F 00 0D 0A 1A 0A`.
    Lzo,
    /// The legacy LZ4 frame (`lz4 -l -9`), magic `02 21 4C 18`.
    Lz4,
    /// A Zstandard frame (`zstd -22 --ultra`), magic `28 B5 2F FD`.
    Zstd,
}

impl Compression {
    /// Every format, in a fixed order.
    pub const ALL: [Compression; 7] = [
        Compression::Gzip,
        Compression::Bzip2,
        Compression::Lzma,
        Compression::Xz,
        Compression::Lzo,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// Identify the format from the first bytes of the payload (magics: gzip
    /// 1F 8B or 1F 9E; bzip2 "BZh"; lzma 5D 00 00; xz FD 37 7A 58 5A 00; lzo
    /// 89 4C 5A 4F 00 0D 0A 1A 0A; lz4 legacy 02 21 4C 18; zstd 28 B5 2F FD).
    pub fn detect(head: &[u8]) -> Option<Compression> {
        const MAGICS: [(&[u8], Compression); 8] = [
            (&[0x1F, 0x8B], Compression::Gzip),
            (&[0x1F, 0x9E], Compression::Gzip),
            (b"BZh", Compression::Bzip2),
            (&[0x5D, 0x00, 0x00], Compression::Lzma),
            (&[0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00], Compression::Xz),
            (
                &[0x89, 0x4C, 0x5A, 0x4F, 0x00, 0x0D, 0x0A, 0x1A, 0x0A],
                Compression::Lzo,
            ),
            (&[0x02, 0x21, 0x4C, 0x18], Compression::Lz4),
            (&[0x28, 0xB5, 0x2F, 0xFD], Compression::Zstd),
        ];
        MAGICS
            .iter()
            .find(|(magic, _)| head.starts_with(magic))
            .map(|&(_, compression)| compression)
    }

    /// Lower-case name ("gzip", "bzip2", "lzma", "xz", "lzo", "lz4", "zstd").
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Lzma => "lzma",
            Compression::Xz => "xz",
            Compression::Lzo => "lzo",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// Whether this build includes a decoder for it (cargo feature on).
    pub fn supported(self) -> bool {
        match self {
            Compression::Gzip => cfg!(feature = "gzip"),
            Compression::Bzip2 => cfg!(feature = "bzip2"),
            Compression::Lzma => cfg!(feature = "lzma"),
            Compression::Xz => cfg!(feature = "xz"),
            Compression::Lzo => cfg!(feature = "lzo"),
            Compression::Lz4 => cfg!(feature = "lz4"),
            Compression::Zstd => cfg!(feature = "zstd"),
        }
    }
}

impl fmt::Display for Compression {
    /// Writes [`Compression::name`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Errors of payload decoding.
///
/// [`PayloadReader::read`](Read::read) returns these inside an [`io::Error`]
/// of kind [`io::ErrorKind::InvalidData`].
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// This build has no decoder for the format (its cargo feature is off).
    #[error("{compression} decompression is not supported by this build")]
    Unsupported {
        /// The format.
        compression: Compression,
    },
    /// The decoder rejected the compressed stream.
    #[error("corrupt {compression} payload after {produced} bytes of output")]
    Decode {
        /// The format.
        compression: Compression,
        /// Decompressed bytes produced before the failure.
        produced: u64,
        /// What the decoder reported.
        #[source]
        source: io::Error,
    },
    /// The decompressed output would exceed the limit given to [`PayloadReader::new`].
    #[error("decompressed payload is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The image cannot be positioned at the payload.
    #[error("cannot seek to the payload at offset {offset:#x}")]
    Seek {
        /// File offset of the payload.
        offset: u64,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A read after the decoder already failed; the earlier error said why.
    #[error("{compression} decoder already failed")]
    AlreadyFailed {
        /// The format.
        compression: Compression,
    },
    /// The lzop container header is malformed or uses a feature not supported.
    #[error("bad lzop header at offset {offset}: {reason}")]
    BadLzopHeader {
        /// Offset of the offending field in the compressed stream.
        offset: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An lzop block is malformed.
    #[error("bad lzop block at offset {offset}: {reason}")]
    BadLzopBlock {
        /// Offset of the block (or of the offending field) in the compressed stream.
        offset: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// State of a [`PayloadReader`] after an error, so that no decoder is driven
/// again once it has failed (their state is unspecified after an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fuse {
    Ok,
    TooLarge,
    Failed,
}

/// A streaming decoder that never produces more than `limit` bytes.
///
/// Reading past `limit` yields an [`io::Error`] of kind
/// [`io::ErrorKind::InvalidData`] whose inner error is
/// [`PayloadError::TooLarge`]; decoder failures carry
/// [`PayloadError::Decode`]. After any error, further reads fail too.
pub struct PayloadReader<'a> {
    inner: Box<dyn Read + 'a>,
    produced: u64,
    limit: u64,
    compression: Compression,
    fuse: Fuse,
}

impl fmt::Debug for PayloadReader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PayloadReader")
            .field("compression", &self.compression)
            .field("produced", &self.produced)
            .field("limit", &self.limit)
            .field("fuse", &self.fuse)
            .finish_non_exhaustive()
    }
}

impl<'a> PayloadReader<'a> {
    /// Wrap `input` (the compressed stream WITHOUT the bzImage's 4-byte size
    /// trailer) in a decoder for `compression`.
    ///
    /// Nothing is read from `input` here: every problem with the stream,
    /// headers included, is reported by [`Read::read`]. The only error is
    /// [`PayloadError::Unsupported`] when the format's cargo feature is off.
    pub fn new<R: Read + 'a>(
        compression: Compression,
        input: R,
        limit: u64,
    ) -> Result<Self, PayloadError> {
        let inner = decoder(compression, input)?;
        Ok(PayloadReader {
            inner,
            produced: 0,
            limit,
            compression,
            fuse: Fuse::Ok,
        })
    }

    /// The decoder for the bzImage payload of `length` bytes at file offset `offset` of
    /// `image`: it reads `length - 4` bytes from there, leaving out the 4-byte
    /// uncompressed-size trailer that `payload_length` counts (strict decoders misread it: lz4
    /// takes it for a block length). The decoders buffer their input themselves.
    pub fn at<R: Read + io::Seek + 'a>(
        mut image: R,
        offset: u64,
        length: u32,
        compression: Compression,
        limit: u64,
    ) -> Result<Self, PayloadError> {
        image
            .seek(io::SeekFrom::Start(offset))
            .map_err(|source| PayloadError::Seek { offset, source })?;
        Self::new(
            compression,
            image.take(u64::from(length).saturating_sub(4)),
            limit,
        )
    }

    /// Decompressed bytes produced so far.
    pub fn produced(&self) -> u64 {
        self.produced
    }

    /// The format.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    fn too_large(&mut self) -> io::Error {
        self.fuse = Fuse::TooLarge;
        io::Error::new(
            io::ErrorKind::InvalidData,
            PayloadError::TooLarge { limit: self.limit },
        )
    }

    /// Reads from the decoder, turning its errors into [`PayloadError::Decode`].
    fn read_inner(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => Ok(n.min(buf.len())),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(source) => {
                self.fuse = Fuse::Failed;
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    PayloadError::Decode {
                        compression: self.compression,
                        produced: self.produced,
                        source,
                    },
                ))
            }
        }
    }
}

impl Read for PayloadReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.fuse {
            Fuse::Ok => {}
            Fuse::TooLarge => return Err(self.too_large()),
            Fuse::Failed => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    PayloadError::AlreadyFailed {
                        compression: self.compression,
                    },
                ));
            }
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let remaining = self.limit.saturating_sub(self.produced);
        if remaining == 0 {
            // At the limit: the stream may only end here. One probe byte
            // tells an exact fit from an overflow.
            let mut probe = [0u8; 1];
            return match self.read_inner(&mut probe)? {
                0 => Ok(0),
                _ => Err(self.too_large()),
            };
        }
        let want = usize::try_from(remaining).map_or(buf.len(), |r| r.min(buf.len()));
        let n = self.read_inner(&mut buf[..want])?;
        self.produced += n as u64;
        Ok(n)
    }
}

/// Builds the decoder for `compression` around `input`.
fn decoder<'a, R: Read + 'a>(
    compression: Compression,
    input: R,
) -> Result<Box<dyn Read + 'a>, PayloadError> {
    // Each arm is compiled only with its feature; the formats whose feature
    // is off fall through to the last arm.
    match compression {
        #[cfg(feature = "gzip")]
        Compression::Gzip => Ok(Box::new(flate2::read::GzDecoder::new(input))),
        #[cfg(feature = "bzip2")]
        Compression::Bzip2 => Ok(Box::new(bzip2::read::BzDecoder::new(input))),
        #[cfg(feature = "lzma")]
        Compression::Lzma => {
            // The constructor reads the 13-byte header, so build it on the first read.
            let input = io::BufReader::with_capacity(INPUT_BUFFER, input);
            Ok(Box::new(Deferred::new(move || {
                let reader = lzma_rust2::LzmaReader::new_mem_limit(input, LZMA_MEM_LIMIT_KB, None)?;
                Ok(Box::new(reader) as Box<dyn Read + 'a>)
            })))
        }
        #[cfg(feature = "xz")]
        Compression::Xz => {
            // xz4rust (a port of xz-embedded, which Linux itself uses to unpack these payloads)
            // rather than lzma-rust2: same speed here, but its window grows with the output
            // instead of doubling to the stream's 32 MiB dictionary, which keeps inspect's peak
            // memory at the bytes actually decoded. One stream; what follows it is ignored.
            let decoder = xz4rust::XzDecoder::in_heap_with_alloc_dict_size(
                xz4rust::DICT_SIZE_MIN,
                (LZMA_MEM_LIMIT_KB as usize) << 10,
            );
            Ok(Box::new(XzStream {
                input: io::BufReader::with_capacity(INPUT_BUFFER, input),
                decoder,
                done: false,
            }))
        }
        #[cfg(feature = "lzo")]
        Compression::Lzo => Ok(Box::new(lzo::LzopReader::new(
            io::BufReader::with_capacity(INPUT_BUFFER, input),
        ))),
        #[cfg(feature = "lz4")]
        Compression::Lz4 => Ok(Box::new(Lz4Reader(lz4_flex::frame::FrameDecoder::new(
            Counting {
                inner: io::BufReader::with_capacity(INPUT_BUFFER, input),
                count: 0,
            },
        )))),
        #[cfg(feature = "zstd")]
        Compression::Zstd => {
            // The constructor reads the frame header, so build it on the first read.
            let input = io::BufReader::with_capacity(INPUT_BUFFER, input);
            Ok(Box::new(Deferred::new(move || {
                let reader = ruzstd::decoding::StreamingDecoder::new_with_max_window_size(
                    input,
                    ZSTD_MAX_WINDOW,
                )
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                Ok(Box::new(reader) as Box<dyn Read + 'a>)
            })))
        }
        #[allow(unreachable_patterns)]
        _ => {
            drop(input);
            Err(PayloadError::Unsupported { compression })
        }
    }
}

/// Counts the bytes read through it.
#[cfg(feature = "lz4")]
struct Counting<R> {
    inner: R,
    count: u64,
}

#[cfg(feature = "lz4")]
impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// `lz4_flex`'s frame decoder, which reads both legacy (`lz4 -l`) and current
/// frames, except that an empty input is an error rather than an empty output.
///
/// The legacy frame has no end marker: a stream cut exactly between two
/// blocks (8 MiB of output each) cannot be told from a complete one.
#[cfg(feature = "lz4")]
struct Lz4Reader<R: Read>(lz4_flex::frame::FrameDecoder<Counting<R>>);

#[cfg(feature = "lz4")]
impl<R: Read> Read for Lz4Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        if n == 0 && !buf.is_empty() && self.0.get_ref().count == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "lz4 stream is empty",
            ));
        }
        Ok(n)
    }
}

/// Builds a decoder, reading its headers.
#[cfg(any(feature = "lzma", feature = "zstd"))]
type DecoderInit<'a> = Box<dyn FnOnce() -> io::Result<Box<dyn Read + 'a>> + 'a>;

/// Builds a decoder whose constructor reads input lazily, on the first read,
/// so that header errors come out of `read` like every other decoding error.
#[cfg(any(feature = "lzma", feature = "zstd"))]
struct Deferred<'a> {
    init: Option<DecoderInit<'a>>,
    reader: Option<Box<dyn Read + 'a>>,
}

#[cfg(any(feature = "lzma", feature = "zstd"))]
impl<'a> Deferred<'a> {
    fn new(init: impl FnOnce() -> io::Result<Box<dyn Read + 'a>> + 'a) -> Self {
        Deferred {
            init: Some(Box::new(init)),
            reader: None,
        }
    }
}

#[cfg(any(feature = "lzma", feature = "zstd"))]
impl Read for Deferred<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(init) = self.init.take() {
            self.reader = Some(init()?);
        }
        match self.reader.as_mut() {
            Some(reader) => reader.read(buf),
            // The constructor failed on an earlier read.
            None => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "decoder could not be started",
            )),
        }
    }
}

/// The lzop container and an LZO1X block decoder.
///
/// Both are written by hand: there is no maintained pure-Rust crate for the
/// lzop container that is not GPL-licensed, and the LZO1X decoder of
/// `lzokay-native` 0.1 is not safe for hostile input (unchecked subtractions
/// and indexing panic on bad match distances, and its output is unbounded).
/// The decoder below checks every input read, match distance and output
/// length, and never produces more than the block's declared size.
#[cfg(feature = "lzo")]
mod lzo {
    use super::PayloadError;
    use std::io::{self, BufRead, Read};

    const MAGIC: [u8; 9] = [0x89, 0x4C, 0x5A, 0x4F, 0x00, 0x0D, 0x0A, 0x1A, 0x0A];

    /// Largest block lzop writes and Linux's `lib/decompress_unlzo.c` accepts.
    pub(super) const MAX_BLOCK: u32 = 256 * 1024;

    const F_ADLER32_D: u32 = 0x0000_0001;
    const F_ADLER32_C: u32 = 0x0000_0002;
    const F_H_EXTRA_FIELD: u32 = 0x0000_0040;
    const F_CRC32_D: u32 = 0x0000_0100;
    const F_CRC32_C: u32 = 0x0000_0200;
    const F_H_FILTER: u32 = 0x0000_0800;
    const F_H_CRC32: u32 = 0x0000_1000;

    /// lzop methods that are LZO1X streams (LZO1X-1, LZO1X-1(15), LZO1X-999).
    const METHODS_LZO1X: [u8; 3] = [1, 2, 3];

    fn header_error(offset: u64, reason: &'static str) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            PayloadError::BadLzopHeader { offset, reason },
        )
    }

    fn block_error(offset: u64, reason: &'static str) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            PayloadError::BadLzopBlock { offset, reason },
        )
    }

    /// Streams the contents of an lzop file, one block at a time.
    pub(super) struct LzopReader<R> {
        input: R,
        /// Bytes consumed from `input`.
        offset: u64,
        flags: u32,
        header_done: bool,
        finished: bool,
        /// Compressed bytes of the current block.
        src: Vec<u8>,
        /// Decompressed bytes of the current block, and how many were handed out.
        block: Vec<u8>,
        pos: usize,
    }

    impl<R: BufRead> LzopReader<R> {
        pub(super) fn new(input: R) -> Self {
            LzopReader {
                input,
                offset: 0,
                flags: 0,
                header_done: false,
                finished: false,
                src: Vec::new(),
                block: Vec::new(),
                pos: 0,
            }
        }

        /// Fills `buf`, reporting a short stream through `on_eof`.
        fn fill(
            &mut self,
            buf: &mut [u8],
            on_eof: fn(u64, &'static str) -> io::Error,
            what: &'static str,
        ) -> io::Result<()> {
            match self.input.read_exact(buf) {
                Ok(()) => {
                    self.offset += buf.len() as u64;
                    Ok(())
                }
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    Err(on_eof(self.offset, what))
                }
                Err(e) => Err(e),
            }
        }

        fn be32(
            &mut self,
            on_eof: fn(u64, &'static str) -> io::Error,
            what: &'static str,
        ) -> io::Result<u32> {
            let mut b = [0u8; 4];
            self.fill(&mut b, on_eof, what)?;
            Ok(u32::from_be_bytes(b))
        }

        fn read_header(&mut self) -> io::Result<()> {
            let eof = header_error;
            let truncated = "truncated header";
            let mut magic = [0u8; 9];
            self.fill(&mut magic, eof, truncated)?;
            if magic != MAGIC {
                return Err(header_error(0, "bad magic"));
            }
            // Everything from the version to the file name is covered by the header checksum.
            let mut covered = Vec::with_capacity(64);
            let mut field = |this: &mut Self, len: usize| -> io::Result<u64> {
                let mut b = [0u8; 4];
                this.fill(&mut b[..len], eof, truncated)?;
                covered.extend_from_slice(&b[..len]);
                Ok(b[..len].iter().fold(0u64, |v, &x| (v << 8) | u64::from(x)))
            };
            let version_at = self.offset;
            let version = field(self, 2)?;
            if version < 0x0900 {
                return Err(header_error(version_at, "unsupported lzop version"));
            }
            field(self, 2)?; // library version
            if version >= 0x0940 {
                field(self, 2)?; // version needed to extract
            }
            let method_at = self.offset;
            let method = field(self, 1)?;
            if !METHODS_LZO1X.iter().any(|&m| u64::from(m) == method) {
                return Err(header_error(method_at, "compression method is not lzo1x"));
            }
            if version >= 0x0940 {
                field(self, 1)?; // level
            }
            let flags_at = self.offset;
            let flags = u32::try_from(field(self, 4)?).unwrap_or(u32::MAX);
            if flags & F_H_FILTER != 0 {
                return Err(header_error(flags_at, "lzop filters are not supported"));
            }
            field(self, 4)?; // mode
            field(self, 4)?; // mtime low
            if version >= 0x0940 {
                field(self, 4)?; // mtime high
            }
            let name_len = field(self, 1)?;
            for _ in 0..name_len {
                field(self, 1)?;
            }
            let checksum_at = self.offset;
            let expected = self.be32(eof, truncated)?;
            let actual = if flags & F_H_CRC32 != 0 {
                crc32(&covered)
            } else {
                adler32(&covered)
            };
            if expected != actual {
                return Err(header_error(checksum_at, "header checksum mismatch"));
            }
            if flags & F_H_EXTRA_FIELD != 0 {
                let len = self.be32(eof, truncated)?;
                let skipped =
                    io::copy(&mut (&mut self.input).take(u64::from(len)), &mut io::sink())?;
                self.offset += skipped;
                if skipped != u64::from(len) {
                    return Err(header_error(self.offset, truncated));
                }
                self.be32(eof, truncated)?; // extra field checksum
            }
            self.flags = flags;
            self.header_done = true;
            Ok(())
        }

        /// Decodes the next block into `self.block`; false at the end marker.
        fn next_block(&mut self) -> io::Result<bool> {
            let eof = block_error;
            let truncated = "truncated block";
            let block_at = self.offset;
            let dst_len = self.be32(eof, "missing end-of-stream marker")?;
            if dst_len == 0 {
                return Ok(false);
            }
            if dst_len > MAX_BLOCK {
                return Err(block_error(
                    block_at,
                    "uncompressed block larger than 256 KiB",
                ));
            }
            let src_at = self.offset;
            let src_len = self.be32(eof, truncated)?;
            if src_len == 0 || src_len > dst_len {
                return Err(block_error(
                    src_at,
                    "compressed block size is zero or larger than its uncompressed size",
                ));
            }
            let flags = self.flags;
            let d_adler = if flags & F_ADLER32_D != 0 {
                Some(self.be32(eof, truncated)?)
            } else {
                None
            };
            let d_crc = if flags & F_CRC32_D != 0 {
                Some(self.be32(eof, truncated)?)
            } else {
                None
            };
            let stored = src_len == dst_len;
            let c_adler = if flags & F_ADLER32_C != 0 && !stored {
                Some(self.be32(eof, truncated)?)
            } else {
                None
            };
            let c_crc = if flags & F_CRC32_C != 0 && !stored {
                Some(self.be32(eof, truncated)?)
            } else {
                None
            };
            // Both lengths are at most MAX_BLOCK, so these fit any usize we run on.
            let src_len = src_len as usize;
            let dst_len = dst_len as usize;
            let data_at = self.offset;
            let mut src = std::mem::take(&mut self.src);
            src.clear();
            src.resize(src_len, 0);
            let filled = self.fill(&mut src, eof, truncated);
            self.src = src;
            filled?;
            if c_adler.is_some_and(|c| c != adler32(&self.src))
                || c_crc.is_some_and(|c| c != crc32(&self.src))
            {
                return Err(block_error(data_at, "compressed data checksum mismatch"));
            }
            self.block.clear();
            self.pos = 0;
            if stored {
                self.block.extend_from_slice(&self.src);
            } else {
                self.block.reserve(dst_len);
                lzo1x_decompress(&self.src, &mut self.block, dst_len)
                    .map_err(|reason| block_error(data_at, reason))?;
                if self.block.len() != dst_len {
                    return Err(block_error(
                        data_at,
                        "block decompressed to a different size than declared",
                    ));
                }
            }
            if d_adler.is_some_and(|c| c != adler32(&self.block))
                || d_crc.is_some_and(|c| c != crc32(&self.block))
            {
                return Err(block_error(data_at, "uncompressed data checksum mismatch"));
            }
            Ok(true)
        }
    }

    impl<R: BufRead> Read for LzopReader<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            loop {
                if self.pos < self.block.len() {
                    let n = buf.len().min(self.block.len() - self.pos);
                    buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
                    self.pos += n;
                    return Ok(n);
                }
                if self.finished || buf.is_empty() {
                    return Ok(0);
                }
                if !self.header_done {
                    self.read_header()?;
                }
                if !self.next_block()? {
                    self.finished = true;
                    self.block.clear();
                    self.pos = 0;
                }
            }
        }
    }

    /// Adler-32 as lzop computes it (initial value 1).
    pub(super) fn adler32(data: &[u8]) -> u32 {
        const MOD: u32 = 65_521;
        let (mut a, mut b) = (1u32, 0u32);
        // 5552 is the largest n for which the sums cannot overflow a u32.
        for chunk in data.chunks(5552) {
            for &x in chunk {
                a += u32::from(x);
                b += a;
            }
            a %= MOD;
            b %= MOD;
        }
        (b << 16) | a
    }

    /// CRC-32 (IEEE, reflected), as lzop computes it (initial value 0).
    pub(super) fn crc32(data: &[u8]) -> u32 {
        const TABLE: [u32; 256] = {
            let mut table = [0u32; 256];
            let mut i = 0u32;
            while i < 256 {
                let mut c = i;
                let mut k = 0;
                while k < 8 {
                    c = if c & 1 != 0 {
                        0xEDB8_8320 ^ (c >> 1)
                    } else {
                        c >> 1
                    };
                    k += 1;
                }
                table[i as usize] = c;
                i += 1;
            }
            table
        };
        !data.iter().fold(!0u32, |c, &x| {
            TABLE[usize::from(c.to_le_bytes()[0] ^ x)] ^ (c >> 8)
        })
    }

    /// Cursor over a compressed block; every read is bounds-checked.
    struct Input<'s> {
        src: &'s [u8],
        pos: usize,
    }

    impl Input<'_> {
        fn byte(&mut self) -> Result<u8, &'static str> {
            let b = *self.src.get(self.pos).ok_or(INPUT_OVERRUN)?;
            self.pos += 1;
            Ok(b)
        }

        fn le16(&mut self) -> Result<usize, &'static str> {
            let lo = self.byte()?;
            let hi = self.byte()?;
            Ok(usize::from(u16::from_le_bytes([lo, hi])))
        }

        fn take(&mut self, n: usize) -> Result<&[u8], &'static str> {
            let end = self.pos.checked_add(n).ok_or(INPUT_OVERRUN)?;
            let s = self.src.get(self.pos..end).ok_or(INPUT_OVERRUN)?;
            self.pos = end;
            Ok(s)
        }

        /// A length continued in extra bytes: each zero byte adds 255, then
        /// a non-zero byte is added to `base`.
        fn long_length(&mut self, base: usize) -> Result<usize, &'static str> {
            let mut len = base;
            loop {
                match self.byte()? {
                    0 => len = len.checked_add(255).ok_or(OUTPUT_OVERRUN)?,
                    b => return len.checked_add(usize::from(b)).ok_or(OUTPUT_OVERRUN),
                }
            }
        }
    }

    const INPUT_OVERRUN: &str = "lzo1x data ends in the middle of an instruction";
    const OUTPUT_OVERRUN: &str = "lzo1x data decodes to more than the block size";
    const LOOKBEHIND_OVERRUN: &str = "lzo1x match reaches before the start of the block";

    fn copy_literals(
        input: &mut Input<'_>,
        out: &mut Vec<u8>,
        max_out: usize,
        n: usize,
    ) -> Result<(), &'static str> {
        if n > max_out - out.len() {
            return Err(OUTPUT_OVERRUN);
        }
        out.extend_from_slice(input.take(n)?);
        Ok(())
    }

    fn copy_match(
        out: &mut Vec<u8>,
        max_out: usize,
        distance: usize,
        len: usize,
    ) -> Result<(), &'static str> {
        if distance == 0 || distance > out.len() {
            return Err(LOOKBEHIND_OVERRUN);
        }
        if len > max_out - out.len() {
            return Err(OUTPUT_OVERRUN);
        }
        let start = out.len() - distance;
        if distance >= len {
            out.extend_from_within(start..start + len);
        } else {
            // Overlapping copy: the match repeats bytes it is itself producing.
            for i in 0..len {
                let b = out[start + i];
                out.push(b);
            }
        }
        Ok(())
    }

    /// Decodes one LZO1X block (any of LZO1X-1, -1(15), -999) from `src`,
    /// appending at most `max_out` bytes to `out` (which must start empty).
    ///
    /// The whole of `src` must be consumed and end with the end-of-stream
    /// instruction, as Linux's `lzo1x_decompress_safe` demands.
    pub(super) fn lzo1x_decompress(
        src: &[u8],
        out: &mut Vec<u8>,
        max_out: usize,
    ) -> Result<(), &'static str> {
        let mut input = Input { src, pos: 0 };
        // Literals copied by the previous instruction: 0..=3, or 4 for "4 or more".
        let mut state: usize;
        let first = *src.first().ok_or(INPUT_OVERRUN)?;
        if first > 17 {
            input.pos = 1;
            let n = usize::from(first - 17);
            copy_literals(&mut input, out, max_out, n)?;
            state = n.min(4);
        } else {
            state = 0;
        }
        loop {
            let inst = usize::from(input.byte()?);
            let (distance, len, next_state);
            if inst >= 64 {
                // M2: 3..8 bytes from up to 2 KiB back.
                let h = usize::from(input.byte()?);
                distance = (h << 3) + ((inst >> 2) & 7) + 1;
                len = (inst >> 5) + 1;
                next_state = inst & 3;
            } else if inst >= 32 {
                // M3: up to 16 KiB back.
                len = match inst & 31 {
                    0 => input.long_length(31 + 2)?,
                    l => l + 2,
                };
                let d = input.le16()?;
                distance = (d >> 2) + 1;
                next_state = d & 3;
            } else if inst >= 16 {
                // M4: 16..48 KiB back, or the end of the stream.
                len = match inst & 7 {
                    0 => input.long_length(7 + 2)?,
                    l => l + 2,
                };
                let d = input.le16()?;
                let far = ((inst & 8) << 11) + (d >> 2);
                if far == 0 {
                    if len != 3 {
                        return Err("lzo1x end-of-stream instruction is malformed");
                    }
                    if input.pos != src.len() {
                        return Err("lzo1x block has data after its end-of-stream instruction");
                    }
                    return Ok(());
                }
                distance = far + 0x4000;
                next_state = d & 3;
            } else if state == 0 {
                // A run of 4 or more literals.
                let n = match inst {
                    0 => input.long_length(15 + 3)?,
                    l => l + 3,
                };
                copy_literals(&mut input, out, max_out, n)?;
                state = 4;
                continue;
            } else if state < 4 {
                // M1 after 1..3 literals: 2 bytes from up to 1 KiB back.
                let h = usize::from(input.byte()?);
                distance = (h << 2) + (inst >> 2) + 1;
                len = 2;
                next_state = inst & 3;
            } else {
                // M1 after a literal run: 3 bytes from 2..3 KiB back.
                let h = usize::from(input.byte()?);
                distance = (h << 2) + (inst >> 2) + 2049;
                len = 3;
                next_state = inst & 3;
            }
            copy_match(out, max_out, distance, len)?;
            copy_literals(&mut input, out, max_out, next_state)?;
            state = next_state;
        }
    }
}

/// Test-only access to the hand-written LZO pieces.
#[cfg(all(test, feature = "lzo"))]
mod tests {
    use super::lzo::{adler32, crc32, lzo1x_decompress};

    #[test]
    fn checksums_match_known_values() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn lzo1x_rejects_match_before_start() {
        let mut out = Vec::new();
        // M2 instruction with an empty window.
        assert!(lzo1x_decompress(&[0x40, 0x00], &mut out, 100).is_err());
        // Literal "abcd", then the end marker.
        let mut out = Vec::new();
        lzo1x_decompress(&[21, b'a', b'b', b'c', b'd', 0x11, 0, 0], &mut out, 4).unwrap();
        assert_eq!(out, b"abcd");
        // Same, with a limit too small.
        let mut out = Vec::new();
        assert!(lzo1x_decompress(&[21, b'a', b'b', b'c', b'd', 0x11, 0, 0], &mut out, 3).is_err());
    }
}

/// Drives xz4rust's decoder over a borrowed input (its own `XzReader` requires a `'static`
/// reader, and ours borrows the image file).
#[cfg(feature = "xz")]
struct XzStream<R> {
    input: R,
    decoder: Box<xz4rust::XzDecoder<'static>>,
    done: bool,
}

#[cfg(feature = "xz")]
impl<R: io::BufRead> Read for XzStream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.done {
            return Ok(0);
        }
        loop {
            let avail = self.input.fill_buf()?;
            if avail.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "xz stream ends before its end marker",
                ));
            }
            let result = self
                .decoder
                .decode(avail, buf)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let (used, out) = (result.input_consumed(), result.output_produced());
            self.input.consume(used);
            if matches!(result, xz4rust::XzNextBlockResult::EndOfStream(..)) {
                self.done = true;
                return Ok(out);
            }
            if out > 0 {
                return Ok(out);
            }
        }
    }
}
