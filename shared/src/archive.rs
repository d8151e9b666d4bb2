//! Hardened tar / tar.gz reading and deterministic tar / tar.gz writing.
//!
//! Shared by keys tarballs ([`crate::tarball`]) and transfer bundles ([`crate::bundle`]).
//! Both are small archives of regular files that are read completely into memory, so this
//! module works on byte slices and never touches the file system.
//!
//! # Reading ([`read`])
//!
//! * gzip is detected by its magic bytes `1f 8b`; anything else is read as plain tar;
//! * the decompressed stream is bounded ([`Limits::max_stream_size`]), so a gzip bomb is
//!   refused after at most that many bytes, and data after the end of the gzip stream is
//!   refused;
//! * every entry must be a regular file; directory entries are skipped (their names are
//!   still checked); symbolic links, hard links, character and block devices, FIFOs,
//!   contiguous files, GNU sparse files, pax global headers and unknown types are refused;
//! * names must be non-empty UTF-8 without NUL or other control characters, without `\`,
//!   relative, and made of non-empty components other than `.` and `..` (a leading `./` is
//!   accepted and removed, so `./a` is returned as `a`);
//! * duplicate names are refused, including names that differ only in letter case (they
//!   would collide on case-insensitive file systems and are a classic confusion trick);
//! * the number of entries, each member's size and the sum of the sizes are bounded by the
//!   caller's [`Limits`];
//! * the end-of-archive marker (two zero blocks) must be there, so a file cut at a member
//!   boundary is refused instead of read as a smaller archive; non-zero bytes after it are
//!   refused.
//!
//! GNU long names (`L`) and pax extended headers (`x`, keys `path` and `size`) are
//! understood (through the `tar` crate). Every error names the entry and says what is
//! wrong with it. Members come back in archive order.
//!
//! # Writing ([`write()`], [`write_tar`], [`gzip`])
//!
//! The output depends only on the members given, in the order given: USTAR headers, type
//! `0` (regular file), the mode given per member, uid/gid 0, empty user and group names,
//! mtime 0, names up to 255 bytes (split into the USTAR prefix/name fields), data padded to
//! 512 bytes, and the end-of-archive marker of two zero blocks (no further record padding).
//! Optional gzip uses compression level 6 and the fixed header
//! [`FIXED_GZIP_HEADER`] (no file name, mtime 0, OS "unknown").

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::ops::Deref;

use zeroize::Zeroizing;

/// Size of a tar block.
const BLOCK: u64 = 512;

/// The end-of-archive marker: two zero blocks.
const END_MARKER: usize = 2 * BLOCK as usize;

/// How many times its compressed size a gzip stream's own size claim is believed when
/// reserving memory for it (beyond that the buffer grows as data actually arrives).
const GZIP_HINT_RATIO: u64 = 8;

/// The two magic bytes that start every gzip stream.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The exact 10-byte gzip header [`gzip`] writes: deflate, no flags, mtime 0, no extra
/// flags, OS 255 ("unknown").
pub const FIXED_GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff];

/// Whether an archive is (or is to be) gzip-compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Plain tar.
    None,
    /// tar inside one gzip stream.
    Gzip,
}

impl Compression {
    /// Detects gzip by its magic bytes; everything else is taken for plain tar.
    pub fn detect(bytes: &[u8]) -> Compression {
        if bytes.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else {
            Compression::None
        }
    }
}

/// Caller-chosen bounds applied while reading an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most entries accepted (every header counts, directories included, pax and GNU
    /// long-name headers not).
    pub max_entries: usize,
    /// Largest accepted member, in bytes.
    pub max_member_size: u64,
    /// Largest accepted sum of all member sizes, in bytes.
    pub max_total_size: u64,
}

impl Limits {
    /// Convenience constructor.
    pub const fn new(max_entries: usize, max_member_size: u64, max_total_size: u64) -> Self {
        Limits {
            max_entries,
            max_member_size,
            max_total_size,
        }
    }

    /// Bound on the decompressed tar stream: the member data plus 8 KiB per entry for
    /// headers, long names and padding, plus 64 KiB.
    pub fn max_stream_size(&self) -> u64 {
        let per_entry = (self.max_entries as u64)
            .saturating_add(1)
            .saturating_mul(8192);
        self.max_total_size
            .saturating_add(per_entry)
            .saturating_add(64 * 1024)
    }
}

/// One regular file read from an archive. The data is wiped from memory when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Member {
    /// Validated, normalized name (`/`-separated, relative).
    pub name: String,
    /// The file's bytes.
    pub data: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print contents: members may be private keys.
        f.debug_struct("Member")
            .field("name", &self.name)
            .field("len", &self.data.len())
            .finish()
    }
}

/// One regular file to write.
#[derive(Debug, Clone, Copy)]
pub struct MemberRef<'a> {
    /// Name inside the archive (validated like names read).
    pub name: &'a str,
    /// Contents.
    pub data: &'a [u8],
    /// Unix permission bits stored in the header (e.g. `0o600`).
    pub mode: u32,
}

/// What is wrong with one archive entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryProblem {
    /// The name is empty.
    #[error("empty name")]
    EmptyName,
    /// The name is not valid UTF-8.
    #[error("name is not valid UTF-8")]
    NotUtf8,
    /// The name contains a NUL byte.
    #[error("name contains a NUL byte")]
    Nul,
    /// The name contains a control character.
    #[error("name contains a control character")]
    ControlCharacter,
    /// The name contains a backslash (a path separator on Windows).
    #[error("name contains a backslash")]
    Backslash,
    /// The name is absolute.
    #[error("absolute path")]
    Absolute,
    /// The name has a `..` component.
    #[error("path contains a '..' component")]
    ParentComponent,
    /// The name has an empty or `.` component (`a//b`, `a/./b`, `a/`).
    #[error("path contains an empty or '.' component")]
    EmptyComponent,
    /// The name is longer than USTAR can store (writing only).
    #[error("name longer than {max} bytes or not splittable into the USTAR prefix/name fields")]
    NameTooLong {
        /// Limit in bytes.
        max: usize,
    },
    /// A symbolic link.
    #[error("is a symbolic link (to {target:?}); only regular files are allowed")]
    Symlink {
        /// Link target as written.
        target: String,
    },
    /// A hard link.
    #[error("is a hard link (to {target:?}); only regular files are allowed")]
    Hardlink {
        /// Link target as written.
        target: String,
    },
    /// A character device.
    #[error("is a character device; only regular files are allowed")]
    CharDevice,
    /// A block device.
    #[error("is a block device; only regular files are allowed")]
    BlockDevice,
    /// A named pipe.
    #[error("is a FIFO (named pipe); only regular files are allowed")]
    Fifo,
    /// A GNU sparse file (header type `S` or pax `GNU.sparse.*` keys).
    #[error("is a sparse file; only plain regular files are allowed")]
    Sparse,
    /// A pax global header (`g`), which would change how later entries are read.
    #[error("is a pax global header, which is not supported")]
    PaxGlobalHeader,
    /// A pax extended header that cannot be parsed.
    #[error("has a malformed pax extended header: {0}")]
    BadPax(String),
    /// Any other entry type (contiguous files, vendor extensions, ...).
    #[error("has unsupported entry type {0:?}; only regular files are allowed")]
    UnsupportedType(char),
    /// The same name (possibly differing only in letter case) appeared before.
    #[error("duplicate name (same as earlier entry {first:?}, ignoring letter case)")]
    Duplicate {
        /// The earlier entry's name.
        first: String,
    },
    /// The member is larger than the per-member limit.
    #[error("member is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// Size declared in the header.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The member's data ends early.
    #[error("member data is truncated ({got} of {size} bytes)")]
    Truncated {
        /// Bytes actually present.
        got: u64,
        /// Size declared in the header.
        size: u64,
    },
}

/// Errors of reading or writing an archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The input is empty.
    #[error("the file is empty; expected a tar or tar.gz archive")]
    Empty,
    /// The input is neither gzip nor a tar archive.
    #[error("not a tar or tar.gz archive: {reason}")]
    NotAnArchive {
        /// What was found.
        reason: String,
    },
    /// The gzip stream is corrupt.
    #[error("corrupt gzip data (the file is damaged or truncated): {reason}")]
    Gzip {
        /// Decoder message.
        reason: String,
    },
    /// Bytes follow the end of the gzip stream.
    #[error("{extra} unexpected bytes after the end of the gzip stream (the file is damaged or was tampered with)")]
    GzipTrailingData {
        /// Number of extra bytes.
        extra: usize,
    },
    /// The decompressed stream exceeds [`Limits::max_stream_size`].
    #[error("archive expands to more than {limit} bytes (possible gzip bomb); refusing it")]
    StreamTooLarge {
        /// The bound that was hit.
        limit: u64,
    },
    /// The tar structure itself is corrupt.
    #[error("corrupt tar archive ({where_}): {reason}")]
    Tar {
        /// Which entry the problem follows.
        where_: String,
        /// What the parser found.
        reason: String,
    },
    /// An entry was refused.
    #[error("archive entry {entry:?} refused: {problem}")]
    Entry {
        /// Entry name as written (lossy UTF-8 if necessary).
        entry: String,
        /// What is wrong.
        problem: EntryProblem,
    },
    /// More entries than [`Limits::max_entries`].
    #[error("archive has more than {limit} entries")]
    TooManyEntries {
        /// The limit.
        limit: usize,
    },
    /// The members add up to more than [`Limits::max_total_size`].
    #[error(
        "archive members add up to more than {limit} bytes (limit reached at entry {entry:?})"
    )]
    TotalTooLarge {
        /// Entry at which the sum crossed the limit.
        entry: String,
        /// The limit.
        limit: u64,
    },
    /// The archive stops without its end-of-archive marker (two zero blocks).
    #[error("the tar archive ends without its end-of-archive marker after entry {last:?}: the file is truncated; use an intact copy")]
    MissingEndMarker {
        /// The last entry read (empty if none).
        last: String,
    },
    /// Non-zero data follows the end-of-archive marker.
    #[error("unexpected data after the end of the tar archive at byte {offset} (the file is damaged or was tampered with)")]
    TrailingData {
        /// Offset of the first non-zero byte.
        offset: u64,
    },
    /// Writing a member failed.
    #[error("cannot write archive member {entry:?}: {problem}")]
    Write {
        /// Member name.
        entry: String,
        /// What is wrong.
        problem: EntryProblem,
    },
    /// Compressing failed (should not happen when writing to memory).
    #[error("cannot compress the archive: {0}")]
    Compress(io::Error),
}

/// The decompressed tar stream: borrowed from the input for plain tar, owned (and wiped on
/// drop) after gunzip.
pub enum TarStream<'a> {
    /// The input was plain tar.
    Borrowed(&'a [u8]),
    /// The input was gzip; this is the decompressed data.
    Owned(Zeroizing<Vec<u8>>),
}

impl Deref for TarStream<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            TarStream::Borrowed(b) => b,
            TarStream::Owned(v) => v,
        }
    }
}

impl std::fmt::Debug for TarStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TarStream({} bytes)", self.len())
    }
}

/// Reads a tar or tar.gz archive (auto-detected) with all the checks of the module
/// documentation; returns the regular files in archive order.
pub fn read(bytes: &[u8], limits: &Limits) -> Result<Vec<Member>, ArchiveError> {
    let (_, tar) = decompress(bytes, limits)?;
    read_tar(&tar, limits)
}

/// Undoes the gzip layer if there is one (bounded by [`Limits::max_stream_size`], refusing
/// trailing data), and reports which compression was found.
pub fn decompress<'a>(
    bytes: &'a [u8],
    limits: &Limits,
) -> Result<(Compression, TarStream<'a>), ArchiveError> {
    if bytes.is_empty() {
        return Err(ArchiveError::Empty);
    }
    match Compression::detect(bytes) {
        Compression::None => Ok((Compression::None, TarStream::Borrowed(bytes))),
        Compression::Gzip => {
            let limit = limits.max_stream_size();
            let mut decoder = flate2::bufread::GzDecoder::new(bytes);
            // The gzip trailer's ISIZE (length mod 2^32) sizes the buffer once, so growing it
            // does not leave copies behind. It is written by whoever wrote the file: trusted
            // only up to a plausible ratio (JSON deflates about 3-5x), so that a few forged
            // bytes cannot make the reader reserve hundreds of megabytes up front.
            let plausible = (bytes.len() as u64).saturating_mul(GZIP_HINT_RATIO);
            let hint = bytes
                .len()
                .checked_sub(4)
                .map(|at| {
                    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
                })
                .map_or(0, |n| u64::from(n).min(limit).min(plausible));
            let mut out = Zeroizing::new(Vec::with_capacity(
                usize::try_from(hint).unwrap_or(0).saturating_add(1),
            ));
            (&mut decoder)
                .take(limit.saturating_add(1))
                .read_to_end(&mut out)
                .map_err(|e| ArchiveError::Gzip {
                    reason: e.to_string(),
                })?;
            if out.len() as u64 > limit {
                return Err(ArchiveError::StreamTooLarge { limit });
            }
            let rest = decoder.into_inner();
            if !rest.is_empty() {
                return Err(ArchiveError::GzipTrailingData { extra: rest.len() });
            }
            Ok((Compression::Gzip, TarStream::Owned(out)))
        }
    }
}

/// The error for an entry the `tar` crate cannot read, naming the entry from its raw header
/// at `offset` when there is one (a GNU sparse entry is refused as such).
fn unreadable_entry(
    tar_bytes: &[u8],
    offset: u64,
    fallback_where: String,
    e: std::io::Error,
) -> ArchiveError {
    let header = usize::try_from(offset)
        .ok()
        .and_then(|at| tar_bytes.get(at..at.checked_add(BLOCK as usize)?));
    let Some(header) = header else {
        return ArchiveError::Tar {
            where_: fallback_where,
            reason: e.to_string(),
        };
    };
    let field = |range: std::ops::Range<usize>| {
        let f = &header[range];
        let len = f.iter().position(|&b| b == 0).unwrap_or(f.len());
        String::from_utf8_lossy(&f[..len]).into_owned()
    };
    let (name, prefix) = (field(0..100), field(345..500));
    let name = if header[257..262] == *b"ustar" && !prefix.is_empty() {
        format!("{prefix}/{name}")
    } else {
        name
    };
    if header[156] == b'S' {
        return ArchiveError::Entry {
            entry: name,
            problem: EntryProblem::Sparse,
        };
    }
    ArchiveError::Tar {
        where_: format!("at entry {name:?} (byte {offset})"),
        reason: e.to_string(),
    }
}

/// Reads a plain (already decompressed) tar stream; see [`read`].
pub fn read_tar(tar_bytes: &[u8], limits: &Limits) -> Result<Vec<Member>, ArchiveError> {
    if tar_bytes.is_empty() {
        return Err(ArchiveError::Empty);
    }
    if tar_bytes.len() as u64 > limits.max_stream_size() {
        return Err(ArchiveError::StreamTooLarge {
            limit: limits.max_stream_size(),
        });
    }
    check_first_header(tar_bytes)?;

    let mut archive = tar::Archive::new(tar_bytes);
    let entries = archive.entries().map_err(|e| ArchiveError::Tar {
        where_: "at the start".into(),
        reason: e.to_string(),
    })?;
    let mut members: Vec<Member> = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut last_name: Option<String> = None;
    let mut count = 0usize;
    let mut total = 0u64;
    let mut end = 0u64;
    for entry in entries {
        let where_ = || match &last_name {
            Some(n) => format!("after entry {n:?}"),
            None => "in the first entry".to_string(),
        };
        let mut entry = entry.map_err(|e| unreadable_entry(tar_bytes, end, where_(), e))?;
        count += 1;
        if count > limits.max_entries {
            return Err(ArchiveError::TooManyEntries {
                limit: limits.max_entries,
            });
        }
        let raw_name = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_name).into_owned();
        let refuse = |problem| ArchiveError::Entry {
            entry: shown.clone(),
            problem,
        };
        let size = entry.size();
        end = entry
            .raw_file_position()
            .checked_add(size)
            .and_then(|e| e.checked_next_multiple_of(BLOCK))
            .ok_or_else(|| {
                refuse(EntryProblem::TooLarge {
                    size,
                    limit: limits.max_member_size,
                })
            })?;
        if let Some(pax) = entry.pax_extensions().map_err(|e| ArchiveError::Tar {
            where_: where_(),
            reason: e.to_string(),
        })? {
            for ext in pax {
                let ext = ext.map_err(|e| refuse(EntryProblem::BadPax(e.to_string())))?;
                let key = ext
                    .key()
                    .map_err(|e| refuse(EntryProblem::BadPax(e.to_string())))?;
                if key.starts_with("GNU.sparse") {
                    return Err(refuse(EntryProblem::Sparse));
                }
            }
        }
        let link = || {
            entry
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        let is_dir = match entry.header().entry_type() {
            tar::EntryType::Regular => false,
            tar::EntryType::Directory => true,
            tar::EntryType::Symlink => {
                return Err(refuse(EntryProblem::Symlink { target: link() }))
            }
            tar::EntryType::Link => return Err(refuse(EntryProblem::Hardlink { target: link() })),
            tar::EntryType::Char => return Err(refuse(EntryProblem::CharDevice)),
            tar::EntryType::Block => return Err(refuse(EntryProblem::BlockDevice)),
            tar::EntryType::Fifo => return Err(refuse(EntryProblem::Fifo)),
            tar::EntryType::GNUSparse => return Err(refuse(EntryProblem::Sparse)),
            tar::EntryType::XGlobalHeader => return Err(refuse(EntryProblem::PaxGlobalHeader)),
            other => {
                return Err(refuse(EntryProblem::UnsupportedType(char::from(
                    other.as_byte(),
                ))))
            }
        };
        let name = normalize_name(&raw_name, is_dir).map_err(refuse)?;
        last_name = Some(name.clone());
        if is_dir {
            continue;
        }
        if size > limits.max_member_size {
            return Err(refuse(EntryProblem::TooLarge {
                size,
                limit: limits.max_member_size,
            }));
        }
        total = total.saturating_add(size);
        if total > limits.max_total_size {
            return Err(ArchiveError::TotalTooLarge {
                entry: name,
                limit: limits.max_total_size,
            });
        }
        if let Some(first) = seen.insert(name.to_lowercase(), name.clone()) {
            return Err(refuse(EntryProblem::Duplicate { first }));
        }
        // The stream is in memory: take the data straight from it.
        let pos = entry.raw_file_position();
        let available = (tar_bytes.len() as u64).saturating_sub(pos).min(size);
        let slice = usize::try_from(pos)
            .ok()
            .zip(usize::try_from(size).ok())
            .and_then(|(p, n)| tar_bytes.get(p..p.checked_add(n)?));
        let Some(slice) = slice else {
            return Err(refuse(EntryProblem::Truncated {
                got: available,
                size,
            }));
        };
        let data = Zeroizing::new(slice.to_vec());
        members.push(Member { name, data });
    }
    let start = usize::try_from(end)
        .unwrap_or(usize::MAX)
        .min(tar_bytes.len());
    if let Some(pos) = tar_bytes[start..].iter().position(|&b| b != 0) {
        return Err(ArchiveError::TrailingData {
            offset: (start + pos) as u64,
        });
    }
    // Without the marker, a file cut at a member boundary would read as a smaller archive
    // (a keys tarball silently missing its last key).
    if tar_bytes.len() - start < END_MARKER {
        return Err(ArchiveError::MissingEndMarker {
            last: last_name.unwrap_or_default(),
        });
    }
    Ok(members)
}

/// Gives a clearer error than "checksum mismatch" when the input is not a tar at all.
fn check_first_header(tar_bytes: &[u8]) -> Result<(), ArchiveError> {
    let Some(block) = tar_bytes.get(..BLOCK as usize) else {
        return Err(ArchiveError::NotAnArchive {
            reason: format!(
                "only {} bytes, shorter than one tar header",
                tar_bytes.len()
            ),
        });
    };
    if block.iter().all(|&b| b == 0) {
        return Ok(()); // An empty archive.
    }
    let stored = std::str::from_utf8(&block[148..156])
        .ok()
        .map(|s| s.trim_matches(|c: char| c == ' ' || c == '\0'))
        .and_then(|s| u32::from_str_radix(s, 8).ok());
    let computed: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    if stored != Some(computed) {
        return Err(ArchiveError::NotAnArchive {
            reason: "the first block is not a valid tar header (bad checksum)".into(),
        });
    }
    Ok(())
}

/// Checks a name read from an archive and removes a leading `./` (and a trailing `/` of a
/// directory).
fn normalize_name(raw: &[u8], is_dir: bool) -> Result<String, EntryProblem> {
    let mut s = std::str::from_utf8(raw).map_err(|_| {
        if raw.contains(&0) {
            EntryProblem::Nul
        } else {
            EntryProblem::NotUtf8
        }
    })?;
    while let Some(rest) = s.strip_prefix("./") {
        s = rest;
    }
    if is_dir {
        s = s.strip_suffix('/').unwrap_or(s);
        if s.is_empty() || s == "." {
            return Ok(String::new()); // The archive root directory: harmless.
        }
    }
    validate_name(s)?;
    Ok(s.to_string())
}

/// Checks that `name` is acceptable as a member name (see the module documentation).
pub fn validate_name(name: &str) -> Result<(), EntryProblem> {
    if name.is_empty() {
        return Err(EntryProblem::EmptyName);
    }
    if name.contains('\0') {
        return Err(EntryProblem::Nul);
    }
    if name.chars().any(char::is_control) {
        return Err(EntryProblem::ControlCharacter);
    }
    if name.contains('\\') {
        return Err(EntryProblem::Backslash);
    }
    if name.starts_with('/') {
        return Err(EntryProblem::Absolute);
    }
    for component in name.split('/') {
        match component {
            ".." => return Err(EntryProblem::ParentComponent),
            "" | "." => return Err(EntryProblem::EmptyComponent),
            _ => {}
        }
    }
    Ok(())
}

/// Writes a deterministic plain tar stream of `members`, in the order given (see the
/// module documentation for the exact header fields).
///
/// Refuses invalid or duplicate names (also case-only duplicates) and names that do not fit
/// USTAR's 100-byte name plus 155-byte prefix fields.
pub fn write_tar(members: &[MemberRef<'_>]) -> Result<Zeroizing<Vec<u8>>, ArchiveError> {
    let mut out = Zeroizing::new(Vec::new());
    write_tar_into(members, &mut out)?;
    Ok(out)
}

/// Like [`write_tar`], appending to a caller-owned buffer (for data that needs no wiping).
pub fn write_tar_into(members: &[MemberRef<'_>], out: &mut Vec<u8>) -> Result<(), ArchiveError> {
    let capacity = members
        .iter()
        .map(|m| BLOCK as usize + m.data.len() + BLOCK as usize)
        .sum::<usize>()
        + 2 * BLOCK as usize;
    out.reserve(capacity);
    encode_tar(members, |part| {
        out.extend_from_slice(part);
        true
    })
    .map(drop)
}

/// Whether `tar` is exactly what [`write_tar`] writes for `members`, compared piece by piece
/// (no second copy of the stream is made). Errors as [`write_tar`] for unwritable members.
pub fn is_tar_of(members: &[MemberRef<'_>], tar: &[u8]) -> Result<bool, ArchiveError> {
    let mut pos = 0usize;
    let same = encode_tar(members, |part| {
        let end = pos + part.len();
        let same = tar.get(pos..end) == Some(part);
        pos = end;
        same
    })?;
    Ok(same && pos == tar.len())
}

/// Produces the deterministic tar stream of `members` as consecutive pieces given to
/// `emit`, which returns `false` to stop early (then the result is `Ok(false)`).
fn encode_tar(
    members: &[MemberRef<'_>],
    mut emit: impl FnMut(&[u8]) -> bool,
) -> Result<bool, ArchiveError> {
    const ZEROS: [u8; 2 * BLOCK as usize] = [0; 2 * BLOCK as usize];
    let mut seen: HashMap<String, &str> = HashMap::new();
    for m in members {
        let fail = |problem| ArchiveError::Write {
            entry: m.name.to_string(),
            problem,
        };
        validate_name(m.name).map_err(fail)?;
        if let Some(first) = seen.insert(m.name.to_lowercase(), m.name) {
            return Err(fail(EntryProblem::Duplicate {
                first: first.to_string(),
            }));
        }
        let header = ustar_header(m.name, m.data.len() as u64, m.mode).map_err(fail)?;
        let pad = padding(m.data.len() as u64);
        if !(emit(&header) && emit(m.data) && emit(&ZEROS[..pad])) {
            return Ok(false);
        }
    }
    Ok(emit(&ZEROS))
}

/// The header block [`write_tar`] writes for a regular file `name` of `size` bytes with
/// permission bits `mode` (the name is checked as for writing; duplicates are the caller's).
pub fn canonical_header(name: &str, size: u64, mode: u32) -> Result<[u8; 512], ArchiveError> {
    validate_name(name)
        .and_then(|()| ustar_header(name, size, mode))
        .map_err(|problem| ArchiveError::Write {
            entry: name.to_string(),
            problem,
        })
}

/// Bytes of zero padding after `size` bytes of member data, up to a whole block.
pub fn padding(size: u64) -> usize {
    ((BLOCK - size % BLOCK) % BLOCK) as usize
}

/// The name and size a tar header block declares (USTAR prefix joined), as the `tar` crate
/// reads them; `None` when the block is not a header it can read.
pub fn header_name_size(block: &[u8; 512]) -> Option<(Vec<u8>, u64)> {
    let header = tar::Header::from_byte_slice(block);
    let size = header.entry_size().ok()?;
    Some((header.path_bytes().into_owned(), size))
}

/// The USTAR header block of a regular file (see the module documentation).
fn ustar_header(name: &str, size: u64, mode: u32) -> Result<[u8; 512], EntryProblem> {
    let mut header = tar::Header::new_ustar();
    header
        .set_path(name)
        .map_err(|_| EntryProblem::NameTooLong { max: 255 })?;
    // `set_path` may normalize; insist that the stored name reads back unchanged.
    if header.path_bytes().as_ref() != name.as_bytes() {
        return Err(EntryProblem::NameTooLong { max: 255 });
    }
    header.set_mode(mode & 0o7777);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(size);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut block = [0u8; 512];
    block.copy_from_slice(header.as_bytes());
    Ok(block)
}

/// A writer compressing into one gzip member with [`FIXED_GZIP_HEADER`] (level 6), for
/// streams written as they are produced; `finish` it.
pub fn gzip_writer<W: Write>(out: W) -> flate2::write::GzEncoder<W> {
    flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(0xff)
        .write(out, flate2::Compression::new(6))
}

/// Compresses a byte stream into one gzip member with [`FIXED_GZIP_HEADER`].
pub fn gzip(data: &[u8]) -> Result<Zeroizing<Vec<u8>>, ArchiveError> {
    let mut out = Zeroizing::new(Vec::with_capacity(data.len() / 4 + 64));
    let mut encoder = gzip_writer(&mut *out);
    encoder.write_all(data).map_err(ArchiveError::Compress)?;
    encoder.finish().map_err(ArchiveError::Compress)?;
    Ok(out)
}

/// Writes a deterministic archive of `members` ([`write_tar`]), gzip-compressed or not.
pub fn write(
    members: &[MemberRef<'_>],
    compression: Compression,
) -> Result<Zeroizing<Vec<u8>>, ArchiveError> {
    let tar = write_tar(members)?;
    match compression {
        Compression::None => Ok(tar),
        Compression::Gzip => gzip(&tar),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMITS: Limits = Limits::new(100, 64 * 1024, 1024 * 1024);

    /// A raw USTAR header with arbitrary name bytes, type flag, size and link name, and a
    /// correct checksum.
    fn raw_header(name: &[u8], typeflag: u8, size: u64, link: &[u8]) -> [u8; 512] {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name);
        h[100..108].copy_from_slice(b"0000600\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[156] = typeflag;
        h[157..157 + link.len()].copy_from_slice(link);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        fix_checksum(&mut h);
        h
    }

    fn fix_checksum(h: &mut [u8; 512]) {
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    }

    /// Assembles headers and data into a tar stream with the end marker.
    fn raw_tar(entries: &[([u8; 512], &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (h, data) in entries {
            out.extend_from_slice(h);
            out.extend_from_slice(data);
            out.resize(out.len().next_multiple_of(512), 0);
        }
        out.resize(out.len() + 1024, 0);
        out
    }

    fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
        // "<len> <key>=<value>\n" where len counts itself.
        let body_len = 1 + key.len() + 1 + value.len() + 1;
        let mut len = body_len + 1;
        while len.to_string().len() + body_len != len {
            len = len.to_string().len() + body_len;
        }
        let mut rec = format!("{len} {key}=").into_bytes();
        rec.extend_from_slice(value);
        rec.push(b'\n');
        rec
    }

    fn refused(bytes: &[u8]) -> (String, EntryProblem) {
        match read(bytes, &LIMITS) {
            Err(ArchiveError::Entry { entry, problem }) => (entry, problem),
            other => panic!("expected an entry refusal, got {other:?}"),
        }
    }

    fn one(name: &[u8], typeflag: u8, data: &[u8], link: &[u8]) -> Vec<u8> {
        raw_tar(&[(raw_header(name, typeflag, data.len() as u64, link), data)])
    }

    #[test]
    fn round_trip_plain_and_gzip_deterministic() {
        let members = [
            MemberRef {
                name: "manifest.json",
                data: b"{}",
                mode: 0o644,
            },
            MemberRef {
                name: "tufrepo/keys/x.sec",
                data: &[1u8; 700],
                mode: 0o600,
            },
            MemberRef {
                name: "empty",
                data: b"",
                mode: 0o600,
            },
        ];
        for c in [Compression::None, Compression::Gzip] {
            let a = write(&members, c).unwrap();
            let b = write(&members, c).unwrap();
            assert_eq!(*a, *b);
            assert_eq!(Compression::detect(&a), c);
            let read_back = read(&a, &LIMITS).unwrap();
            let names: Vec<_> = read_back.iter().map(|m| m.name.as_str()).collect();
            assert_eq!(names, ["manifest.json", "tufrepo/keys/x.sec", "empty"]);
            assert_eq!(*read_back[1].data, vec![1u8; 700]);
            assert!(read_back[2].data.is_empty());
        }
        let gz = write(&members, Compression::Gzip).unwrap();
        assert_eq!(gz[..10], FIXED_GZIP_HEADER);
        // The piecewise comparison agrees with writing and comparing.
        let tar = write_tar(&members).unwrap();
        assert!(is_tar_of(&members, &tar).unwrap());
        for i in [0, 100, 600, 1100, tar.len() - 1] {
            let mut bad = tar.to_vec();
            bad[i] ^= 1;
            assert!(!is_tar_of(&members, &bad).unwrap(), "byte {i}");
        }
        assert!(!is_tar_of(&members, &tar[..tar.len() - 512]).unwrap());
        let mut longer = tar.to_vec();
        longer.extend_from_slice(&[0; 512]);
        assert!(!is_tar_of(&members, &longer).unwrap());
        assert!(!is_tar_of(&members[..2], &tar).unwrap());
    }

    #[test]
    fn written_headers_are_exact() {
        let tar = write_tar(&[MemberRef {
            name: "a",
            data: b"xyz",
            mode: 0o600,
        }])
        .unwrap();
        assert_eq!(tar.len(), 512 * 4);
        let h = &tar[..512];
        assert_eq!(&h[..2], b"a\0");
        assert_eq!(&h[100..108], b"0000600\0");
        assert_eq!(&h[108..124], b"0000000\x000000000\x00");
        assert_eq!(&h[124..136], b"00000000003\0");
        assert_eq!(&h[136..148], b"00000000000\0");
        assert_eq!(h[156], b'0');
        assert_eq!(&h[257..265], b"ustar\x0000");
        assert!(
            h[265..329].iter().all(|&b| b == 0),
            "user/group names empty"
        );
        assert_eq!(&tar[512..515], b"xyz");
        assert!(tar[515..].iter().all(|&b| b == 0));
    }

    #[test]
    fn long_names_use_ustar_prefix() {
        let name = format!("{}/{}", "d".repeat(150), "f".repeat(99));
        let tar = write_tar(&[MemberRef {
            name: &name,
            data: b"1",
            mode: 0o600,
        }])
        .unwrap();
        assert_eq!(read(&tar, &LIMITS).unwrap()[0].name, name);
        let too_long = "x".repeat(101);
        let err = write_tar(&[MemberRef {
            name: &too_long,
            data: b"",
            mode: 0,
        }])
        .unwrap_err();
        assert!(matches!(
            err,
            ArchiveError::Write {
                problem: EntryProblem::NameTooLong { .. },
                ..
            }
        ));
    }

    #[test]
    fn gnu_long_names_and_pax_paths_are_read() {
        let long = format!("tufrepo/keys/{}.pub", "a".repeat(200));
        // GNU long name via the tar crate's GNU header.
        let mut builder = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0);
        h.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut h, &long, &b"{}"[..]).unwrap();
        let bytes = builder.into_inner().unwrap();
        assert_eq!(read(&bytes, &LIMITS).unwrap()[0].name, long);

        // pax path.
        let rec = pax_record("path", long.as_bytes());
        let tar = raw_tar(&[
            (
                raw_header(b"PaxHeaders/x", b'x', rec.len() as u64, b""),
                &rec,
            ),
            (raw_header(b"short", b'0', 2, b""), b"{}"),
        ]);
        assert_eq!(read(&tar, &LIMITS).unwrap()[0].name, long);
    }

    #[test]
    fn accepts_fioctl_style_mode_zero_and_old_regular_type() {
        let mut h = raw_header(b"tufrepo/keys/first-root.pub", 0, 2, b"");
        h[100..108].copy_from_slice(b"0000000\0");
        fix_checksum(&mut h);
        let tar = raw_tar(&[(h, b"{}")]);
        assert_eq!(
            read(&tar, &LIMITS).unwrap()[0].name,
            "tufrepo/keys/first-root.pub"
        );
    }

    #[test]
    fn directories_are_skipped_and_dot_slash_stripped() {
        let tar = raw_tar(&[
            (raw_header(b"./", b'5', 0, b""), b""),
            (raw_header(b"./tufrepo/", b'5', 0, b""), b""),
            (raw_header(b"./tufrepo/keys/a.pub", b'0', 1, b""), b"x"),
        ]);
        let m = read(&tar, &LIMITS).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].name, "tufrepo/keys/a.pub");
        // A directory with a bad name is still refused.
        let tar = raw_tar(&[(raw_header(b"../evil/", b'5', 0, b""), b"")]);
        assert_eq!(refused(&tar).1, EntryProblem::ParentComponent);
    }

    #[test]
    fn refuses_path_tricks() {
        let cases: &[(&[u8], EntryProblem)] = &[
            (b"/etc/passwd", EntryProblem::Absolute),
            (b"../x", EntryProblem::ParentComponent),
            (b"a/../../x", EntryProblem::ParentComponent),
            (b"a//b", EntryProblem::EmptyComponent),
            (b"a/./b", EntryProblem::EmptyComponent),
            (b"a\\..\\b", EntryProblem::Backslash),
            (b"a\x1bb", EntryProblem::ControlCharacter),
            (b"a\xffb", EntryProblem::NotUtf8),
            (b".", EntryProblem::EmptyComponent),
        ];
        for (name, want) in cases {
            let (entry, problem) = refused(&one(name, b'0', b"x", b""));
            assert_eq!(&problem, want, "{entry:?}");
        }
    }

    #[test]
    fn refuses_nul_in_pax_path() {
        let rec = pax_record("path", b"a\0b");
        let tar = raw_tar(&[
            (
                raw_header(b"PaxHeaders/x", b'x', rec.len() as u64, b""),
                &rec,
            ),
            (raw_header(b"a", b'0', 1, b""), b"x"),
        ]);
        assert_eq!(refused(&tar).1, EntryProblem::Nul);
    }

    #[test]
    fn refuses_non_regular_entries() {
        let cases: &[(u8, &[u8], EntryProblem)] = &[
            (
                b'2',
                b"/etc/shadow",
                EntryProblem::Symlink {
                    target: "/etc/shadow".into(),
                },
            ),
            (
                b'1',
                b"other",
                EntryProblem::Hardlink {
                    target: "other".into(),
                },
            ),
            (b'3', b"", EntryProblem::CharDevice),
            (b'4', b"", EntryProblem::BlockDevice),
            (b'6', b"", EntryProblem::Fifo),
            (b'7', b"", EntryProblem::UnsupportedType('7')),
            (b'Z', b"", EntryProblem::UnsupportedType('Z')),
        ];
        for (flag, link, want) in cases {
            let (entry, problem) = refused(&one(b"tufrepo/keys/x.sec", *flag, b"", link));
            assert_eq!(entry, "tufrepo/keys/x.sec");
            assert_eq!(&problem, want);
        }
        // GNU sparse needs a GNU header (magic "ustar  \0") to get past the tar crate.
        let mut h = raw_header(b"sparse", b'S', 0, b"");
        h[257..265].copy_from_slice(b"ustar  \0");
        h[483..495].copy_from_slice(b"00000000000\0"); // real size
        fix_checksum(&mut h);
        assert_eq!(refused(&raw_tar(&[(h, b"")])).1, EntryProblem::Sparse);
        let rec = pax_record("comment", b"hi");
        let tar = raw_tar(&[(raw_header(b"global", b'g', rec.len() as u64, b""), &rec)]);
        assert_eq!(refused(&tar).1, EntryProblem::PaxGlobalHeader);
        let rec = pax_record("GNU.sparse.size", b"10");
        let tar = raw_tar(&[
            (
                raw_header(b"PaxHeaders/x", b'x', rec.len() as u64, b""),
                &rec,
            ),
            (raw_header(b"a", b'0', 1, b""), b"x"),
        ]);
        assert_eq!(refused(&tar).1, EntryProblem::Sparse);
    }

    #[test]
    fn error_message_names_entry_and_problem() {
        let err = read(&one(b"tufrepo/keys/evil", b'2', b"", b"/etc"), &LIMITS).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("tufrepo/keys/evil") && msg.contains("symbolic link"),
            "{msg}"
        );
    }

    #[test]
    fn refuses_duplicates_including_case() {
        let tar = raw_tar(&[
            (raw_header(b"a/B.pub", b'0', 1, b""), b"x"),
            (raw_header(b"a/b.pub", b'0', 1, b""), b"y"),
        ]);
        let (entry, problem) = refused(&tar);
        assert_eq!(entry, "a/b.pub");
        assert_eq!(
            problem,
            EntryProblem::Duplicate {
                first: "a/B.pub".into()
            }
        );
        let tar = raw_tar(&[
            (raw_header(b"x", b'0', 1, b""), b"x"),
            (raw_header(b"./x", b'0', 1, b""), b"y"),
        ]);
        assert!(matches!(refused(&tar).1, EntryProblem::Duplicate { .. }));
        let err = write_tar(&[
            MemberRef {
                name: "K",
                data: b"",
                mode: 0,
            },
            MemberRef {
                name: "k",
                data: b"",
                mode: 0,
            },
        ])
        .unwrap_err();
        assert!(matches!(
            err,
            ArchiveError::Write {
                problem: EntryProblem::Duplicate { .. },
                ..
            }
        ));
    }

    #[test]
    fn enforces_size_and_count_limits() {
        let small = Limits::new(3, 10, 15);
        let tar = one(b"big", b'0', &[0u8; 11], b"");
        assert!(matches!(
            read(&tar, &small),
            Err(ArchiveError::Entry {
                problem: EntryProblem::TooLarge {
                    size: 11,
                    limit: 10
                },
                ..
            })
        ));
        let tar = raw_tar(&[
            (raw_header(b"a", b'0', 10, b""), &[0u8; 10]),
            (raw_header(b"b", b'0', 10, b""), &[0u8; 10]),
        ]);
        assert!(matches!(
            read(&tar, &small),
            Err(ArchiveError::TotalTooLarge { ref entry, limit: 15 }) if entry == "b"
        ));
        let tar = raw_tar(&[
            (raw_header(b"a", b'0', 0, b""), b""),
            (raw_header(b"b", b'0', 0, b""), b""),
            (raw_header(b"c", b'0', 0, b""), b""),
            (raw_header(b"d", b'0', 0, b""), b""),
        ]);
        assert!(matches!(
            read(&tar, &small),
            Err(ArchiveError::TooManyEntries { limit: 3 })
        ));
        // A size field far beyond the data: refused by the limit before any allocation.
        let tar = one(b"huge", b'0', b"", b"");
        let mut tar = tar;
        tar[124..136].copy_from_slice(b"77777777777\0");
        let mut h = [0u8; 512];
        h.copy_from_slice(&tar[..512]);
        fix_checksum(&mut h);
        tar[..512].copy_from_slice(&h);
        assert!(matches!(
            read(&tar, &LIMITS),
            Err(ArchiveError::Entry {
                problem: EntryProblem::TooLarge { .. },
                ..
            })
        ));
    }

    #[test]
    fn truncated_member_is_refused() {
        let mut tar = one(b"a", b'0', &[1u8; 100], b"");
        tar.truncate(512 + 50);
        assert!(read(&tar, &LIMITS).is_err());
    }

    #[test]
    fn refuses_gzip_bomb() {
        let zeros = vec![0u8; 4 * 1024 * 1024];
        let bomb = gzip(&zeros).unwrap();
        assert!(bomb.len() < 20 * 1024);
        let err = read(&bomb, &LIMITS).unwrap_err();
        assert!(matches!(err, ArchiveError::StreamTooLarge { .. }), "{err}");
    }

    #[test]
    fn refuses_trailing_data() {
        let members = [MemberRef {
            name: "a",
            data: b"x",
            mode: 0o600,
        }];
        let mut gz = write(&members, Compression::Gzip).unwrap().to_vec();
        gz.extend_from_slice(b"junk");
        assert!(matches!(
            read(&gz, &LIMITS),
            Err(ArchiveError::GzipTrailingData { extra: 4 })
        ));
        let mut tar = write(&members, Compression::None).unwrap().to_vec();
        tar.extend_from_slice(&[0u8; 512]); // zeros are fine (record padding)
        assert_eq!(read(&tar, &LIMITS).unwrap().len(), 1);
        let n = tar.len();
        tar[n - 3] = 1;
        assert!(matches!(
            read(&tar, &LIMITS),
            Err(ArchiveError::TrailingData { .. })
        ));
        // A hidden entry after an early end-of-archive marker.
        let mut hidden = raw_tar(&[(raw_header(b"a", b'0', 1, b""), b"x")]);
        hidden.extend_from_slice(&raw_tar(&[(raw_header(b"b", b'0', 1, b""), b"y")]));
        assert!(matches!(
            read(&hidden, &LIMITS),
            Err(ArchiveError::TrailingData { .. })
        ));
    }

    #[test]
    fn refuses_a_tar_cut_at_a_member_boundary() {
        let members = [
            MemberRef {
                name: "a.pub",
                data: b"x",
                mode: 0o600,
            },
            MemberRef {
                name: "a.sec",
                data: b"y",
                mode: 0o600,
            },
        ];
        let tar = write(&members, Compression::None).unwrap().to_vec();
        // Header + data block of the first member only: a smaller, well-formed-looking tar.
        for cut in [1024, 1536, tar.len() - 512] {
            match read(&tar[..cut], &LIMITS) {
                Err(ArchiveError::MissingEndMarker { last }) if cut == 1024 => {
                    assert_eq!(last, "a.pub")
                }
                Err(ArchiveError::MissingEndMarker { .. }) => {}
                Err(ArchiveError::Entry { .. }) if cut == 1536 => {} // header without data
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
        assert_eq!(read(&tar, &LIMITS).unwrap().len(), 2);
    }

    #[test]
    fn not_an_archive_and_corruption() {
        assert!(matches!(read(b"", &LIMITS), Err(ArchiveError::Empty)));
        assert!(matches!(
            read(b"hello", &LIMITS),
            Err(ArchiveError::NotAnArchive { .. })
        ));
        assert!(matches!(
            read(&[b'{'; 600], &LIMITS),
            Err(ArchiveError::NotAnArchive { .. })
        ));
        let gz = write(
            &[MemberRef {
                name: "a",
                data: b"x",
                mode: 0,
            }],
            Compression::Gzip,
        )
        .unwrap();
        let mut bad = gz.to_vec();
        let n = bad.len();
        bad[n - 6] ^= 0xff; // CRC
        assert!(matches!(
            read(&bad, &LIMITS),
            Err(ArchiveError::Gzip { .. })
        ));
        assert!(matches!(
            read(&gz[..gz.len() - 3], &LIMITS),
            Err(ArchiveError::Gzip { .. })
        ));
        // A corrupt second header.
        let mut tar = raw_tar(&[
            (raw_header(b"a", b'0', 1, b""), b"x"),
            (raw_header(b"b", b'0', 1, b""), b"y"),
        ]);
        tar[1024 + 3] ^= 1;
        let err = read(&tar, &LIMITS).unwrap_err();
        assert!(matches!(err, ArchiveError::Tar { .. }), "{err}");
        assert!(
            err.to_string().contains("at entry \"b\" (byte 1024)"),
            "{err}"
        );
    }

    #[test]
    fn empty_archive_is_fine() {
        let tar = write_tar(&[]).unwrap();
        assert!(read(&tar, &LIMITS).unwrap().is_empty());
        let gz = write(&[], Compression::Gzip).unwrap();
        assert!(read(&gz, &LIMITS).unwrap().is_empty());
    }

    #[test]
    fn debug_hides_member_data() {
        let m = Member {
            name: "k.sec".into(),
            data: Zeroizing::new(b"SECRET".to_vec()),
        };
        let s = format!("{m:?}");
        assert!(!s.contains("SECRET") && s.contains("k.sec"));
    }

    fn name_strategy() -> impl Strategy<Value = String> {
        proptest::collection::vec("[a-zA-Z0-9_.-]{1,12}", 1..4).prop_filter_map(
            "no dot components",
            |parts| {
                if parts.iter().any(|p| p == "." || p == "..") {
                    None
                } else {
                    Some(parts.join("/"))
                }
            },
        )
    }

    proptest! {
        #[test]
        fn prop_round_trip(
            files in proptest::collection::btree_map(name_strategy(), proptest::collection::vec(any::<u8>(), 0..2000), 0..6),
            gz in any::<bool>(),
        ) {
            // Case-insensitive uniqueness is required.
            let mut seen = std::collections::HashSet::new();
            let files: Vec<_> = files.into_iter().filter(|(n, _)| seen.insert(n.to_lowercase())).collect();
            let refs: Vec<_> = files.iter().map(|(n, d)| MemberRef { name: n, data: d, mode: 0o600 }).collect();
            let c = if gz { Compression::Gzip } else { Compression::None };
            let bytes = write(&refs, c).unwrap();
            let back = read(&bytes, &LIMITS).unwrap();
            prop_assert_eq!(back.len(), files.len());
            for (m, (n, d)) in back.iter().zip(files.iter()) {
                prop_assert_eq!(&m.name, n);
                prop_assert_eq!(&*m.data, d);
            }
        }

        #[test]
        fn prop_mutations_never_panic(
            pos in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            cut in any::<prop::sample::Index>(),
            gz in any::<bool>(),
        ) {
            let members = [
                MemberRef { name: "manifest.json", data: b"{\"a\":1}", mode: 0o644 },
                MemberRef { name: "dir/file", data: &[9u8; 600], mode: 0o600 },
            ];
            let c = if gz { Compression::Gzip } else { Compression::None };
            let mut bytes = write(&members, c).unwrap().to_vec();
            let i = pos.index(bytes.len());
            bytes[i] = byte;
            let _ = read(&bytes, &LIMITS);
            let n = cut.index(bytes.len());
            let _ = read(&bytes[..n], &LIMITS);
        }

        #[test]
        fn prop_random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let _ = read(&bytes, &LIMITS);
            let mut with_magic = GZIP_MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            let _ = read(&with_magic, &LIMITS);
        }
    }
}
