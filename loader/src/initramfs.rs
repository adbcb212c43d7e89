//! cpio "newc" archives (SVR4 without CRC, magic `070701`), the format the Linux initramfs
//! unpacker reads (`Documentation/driver-api/early-userspace/buffer-format.rst`), for
//! `anyboot run --init BINARY`: [`init_archive`] packs a static binary as `/init` with the few
//! nodes it needs, [`Newc`] builds any other archive.
//!
//! Each entry is a 110-byte ASCII header (the magic and 13 fields of 8 upper-case hex digits:
//! inode, mode, uid, gid, nlink, mtime, file size, device major/minor, rdev major/minor, name
//! size including the NUL, check), the NUL-terminated name padded so header and name end on a
//! 4-byte boundary, then the data padded to 4 bytes. The archive ends with an entry named
//! `TRAILER!!!`. Everything is owned by root with mtime 0, so the same input always gives the
//! same bytes; inode numbers count up from 1; directories have nlink 2, everything else 1.
//!
//! Paths are stored relative (leading `/`s are dropped), as the kernel's own
//! `usr/gen_init_cpio` does. The unpacker creates nothing implicitly: add a directory before
//! what it contains.
//!
//! **Why hand-written.** The `cpio` crate (0.4.2, MIT) writes newc, but through an
//! `io::Write` stream whose size is declared up front: a short write makes `finish` emit a
//! corrupt archive without an error, lengths go through `as u32` (a file of 4 GiB or more is
//! truncated, or overflows the running count), names are not checked (an embedded NUL is
//! written as is), and every call returns an `io::Result` that cannot fail when writing into
//! memory. What it would save is the formatting of 13 hex fields; the checks below would all be
//! needed anyway.

/// Longest path or symlink target, in bytes without the NUL: Linux's unpacker skips entries
/// whose name size (with the NUL) exceeds `PATH_MAX` (4096).
pub const MAX_PATH_LEN: usize = 4095;

/// The newc magic.
const MAGIC: &[u8; 6] = b"070701";
const TRAILER: &str = "TRAILER!!!";
const S_IFDIR: u32 = 0o040_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
/// Permission bits, set-id bits and the sticky bit: what a `mode` argument may hold.
const PERMISSION_BITS: u32 = 0o7777;

/// Why an entry cannot be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NewcError {
    /// The path is empty, or only `/`s.
    #[error("cpio entry with an empty path")]
    EmptyPath,
    /// The path holds a NUL byte, which would end the name early.
    #[error("cpio path {path:?} contains a NUL byte")]
    NulInPath {
        /// The path as given.
        path: String,
    },
    /// The path is longer than [`MAX_PATH_LEN`].
    #[error("cpio path of {len} bytes: at most {MAX_PATH_LEN}")]
    PathTooLong {
        /// Its length in bytes (after dropping leading `/`s).
        len: usize,
    },
    /// A symlink target that is empty, holds a NUL byte or is longer than [`MAX_PATH_LEN`].
    #[error("symlink {path:?}: target {target:?} must be 1 to {MAX_PATH_LEN} bytes without NUL")]
    BadSymlinkTarget {
        /// The link's path.
        path: String,
        /// The target as given.
        target: String,
    },
    /// The mode has bits outside the permission, set-id and sticky bits (0o7777).
    #[error("cpio entry {path:?}: mode {mode:#o} has bits outside 0o7777")]
    BadMode {
        /// The path as given.
        path: String,
        /// The mode as given.
        mode: u32,
    },
    /// The data does not fit the 32-bit file-size field.
    #[error("cpio entry {path:?}: {len} bytes; newc holds files below 4 GiB")]
    FileTooLarge {
        /// The path as given.
        path: String,
        /// The data's length.
        len: usize,
    },
    /// More entries than 32-bit inode numbers can count.
    #[error("more cpio entries than 32-bit inode numbers can count")]
    TooManyEntries,
}

/// A cpio newc archive being built in memory. See the [module documentation](self) for the
/// format and conventions.
///
/// ```
/// use loader::initramfs::Newc;
///
/// let mut a = Newc::new();
/// a.dir("/etc", 0o755)?.file("/etc/hostname", 0o644, b"guest\n")?;
/// let bytes = a.finish();
/// assert!(bytes.starts_with(b"070701"));
/// # Ok::<(), loader::initramfs::NewcError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Newc {
    buf: Vec<u8>,
    /// The last inode number handed out (0 before the first entry).
    last_ino: u32,
}

impl Newc {
    /// An empty archive.
    pub fn new() -> Newc {
        Newc::default()
    }

    /// Add a directory with permission bits `mode` (e.g. `0o755`).
    ///
    /// # Errors
    ///
    /// A bad path or mode (see [`NewcError`]).
    pub fn dir(&mut self, path: &str, mode: u32) -> Result<&mut Newc, NewcError> {
        self.entry(path, S_IFDIR, mode, 2, (0, 0), b"")
    }

    /// Add a regular file with permission bits `mode` and contents `data`.
    ///
    /// # Errors
    ///
    /// A bad path or mode, or `data` of 4 GiB or more (see [`NewcError`]).
    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> Result<&mut Newc, NewcError> {
        self.entry(path, S_IFREG, mode, 1, (0, 0), data)
    }

    /// Add a character device node `major:minor` (e.g. `/dev/console`, 5:1).
    ///
    /// # Errors
    ///
    /// A bad path or mode (see [`NewcError`]).
    pub fn char_dev(
        &mut self,
        path: &str,
        mode: u32,
        major: u32,
        minor: u32,
    ) -> Result<&mut Newc, NewcError> {
        self.entry(path, S_IFCHR, mode, 1, (major, minor), b"")
    }

    /// Add a symbolic link `path` -> `target` (mode 0777; the target is the link's data and
    /// is stored as given, relative or absolute).
    ///
    /// # Errors
    ///
    /// A bad path, or an empty, NUL-holding or over-long target (see [`NewcError`]).
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<&mut Newc, NewcError> {
        if target.is_empty() || target.contains('\0') || target.len() > MAX_PATH_LEN {
            return Err(NewcError::BadSymlinkTarget {
                path: path.to_owned(),
                target: target.to_owned(),
            });
        }
        self.entry(path, S_IFLNK, 0o777, 1, (0, 0), target.as_bytes())
    }

    /// Append the `TRAILER!!!` entry and return the archive.
    pub fn finish(mut self) -> Vec<u8> {
        // 0 is never a real entry's inode; nlink 1 as the kernel's gen_init_cpio writes it.
        self.header(TRAILER, 0, 0, 1, (0, 0), 0);
        self.buf
    }

    fn entry(
        &mut self,
        path: &str,
        kind: u32,
        mode: u32,
        nlink: u32,
        rdev: (u32, u32),
        data: &[u8],
    ) -> Result<&mut Newc, NewcError> {
        let name = path.trim_start_matches('/');
        if name.is_empty() {
            return Err(NewcError::EmptyPath);
        }
        if name.contains('\0') {
            return Err(NewcError::NulInPath {
                path: path.to_owned(),
            });
        }
        if name.len() > MAX_PATH_LEN {
            return Err(NewcError::PathTooLong { len: name.len() });
        }
        if mode & !PERMISSION_BITS != 0 {
            return Err(NewcError::BadMode {
                path: path.to_owned(),
                mode,
            });
        }
        let size = u32::try_from(data.len()).map_err(|_| NewcError::FileTooLarge {
            path: path.to_owned(),
            len: data.len(),
        })?;
        let ino = self
            .last_ino
            .checked_add(1)
            .ok_or(NewcError::TooManyEntries)?;
        self.last_ino = ino;
        self.header(name, ino, kind | mode, nlink, rdev, size);
        self.buf.extend_from_slice(data);
        self.pad4();
        Ok(self)
    }

    /// Write a header and its padded name. `name` is at most [`MAX_PATH_LEN`] bytes, so its
    /// size with the NUL fits the field.
    fn header(&mut self, name: &str, ino: u32, mode: u32, nlink: u32, rdev: (u32, u32), size: u32) {
        let namesize = u32::try_from(name.len() + 1).unwrap_or(u32::MAX);
        self.buf.extend_from_slice(MAGIC);
        // Owned by root, mtime 0, on no device; `check` is used only by the "070702" CRC format.
        let (uid, gid, mtime, dev_major, dev_minor, check) = (0, 0, 0, 0, 0, 0);
        for field in [
            ino, mode, uid, gid, nlink, mtime, size, dev_major, dev_minor, rdev.0, rdev.1,
            namesize, check,
        ] {
            push_hex8(&mut self.buf, field);
        }
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        self.pad4();
    }

    fn pad4(&mut self) {
        let padded = self.buf.len().next_multiple_of(4);
        self.buf.resize(padded, 0);
    }
}

/// Append `v` as 8 upper-case hex digits.
fn push_hex8(buf: &mut Vec<u8>, v: u32) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for nibble in v.to_be_bytes().iter().flat_map(|b| [b >> 4, b & 0xf]) {
        buf.push(DIGITS[usize::from(nibble)]);
    }
}

/// The archive `anyboot run --init BINARY` boots: directories `/dev` (0755), `/proc`, `/sys`
/// and `/tmp` (0755, for the binary to mount on), `/dev/console` (character device 5:1, 0600,
/// so the kernel can open the console for init's stdin/stdout/stderr before devtmpfs is
/// mounted), and `init` (`/init`, a 0755 regular file holding `init`). Uncompressed: the kernel
/// takes a plain cpio archive as an initramfs.
///
/// # Errors
///
/// [`NewcError::FileTooLarge`] if `init` is 4 GiB or more.
pub fn init_archive(init: &[u8]) -> Result<Vec<u8>, NewcError> {
    let mut a = Newc::new();
    a.dir("dev", 0o755)?
        .char_dev("dev/console", 0o600, 5, 1)?
        .dir("proc", 0o755)?
        .dir("sys", 0o755)?
        .dir("tmp", 0o755)?
        .file("init", 0o755, init)?;
    Ok(a.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_fields_are_eight_upper_case_digits() {
        let mut b = Vec::new();
        push_hex8(&mut b, 0x81ed);
        push_hex8(&mut b, u32::MAX);
        push_hex8(&mut b, 0x0123_abcd);
        assert_eq!(b, b"000081EDFFFFFFFF0123ABCD");
    }

    #[test]
    fn inode_numbers_run_out_with_an_error() {
        let mut a = Newc::new();
        a.last_ino = u32::MAX - 1;
        a.dir("a", 0o755).unwrap();
        assert_eq!(a.dir("b", 0o755).unwrap_err(), NewcError::TooManyEntries);
    }
}
