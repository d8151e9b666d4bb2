//! Bundles larger than memory: members kept on disk, read one at a time, written as a stream.
//!
//! Owns where a member's bytes live ([`MemberBytes`]: a range of a shared buffer, or a range
//! of a file with the digest those bytes must have), reading a plain-tar bundle file in one
//! pass without holding it ([`scan_file`]), the scratch file a request is assembled from
//! ([`Spool`]), and producing a bundle's canonical tar stream piece by piece
//! ([`encode_stream`]), which both writing a file and computing a bundle's digest use.
//!
//! # Bounded memory
//!
//! Targets documents (`prod-targets/…`, `waves/…`) read from a plain-tar file or added from a
//! [`Spool`] stay in that file: the bundle keeps their offset, size and SHA-256. Every other
//! member (manifest, transaction, chain, upload, record, the encrypted first key) is small
//! and kept in memory. So reading, answering and writing a bundle holds a few documents at a
//! time, whatever the factory's size; the gzip form (written by early versions, read for
//! compatibility) is still decompressed in memory and keeps the 256 MiB cap of
//! [`super::MAX_FILE_SIZE`].
//!
//! # The medium is not trusted twice
//!
//! A member kept in a bundle file is read again when it is used, and the USB stick it is on
//! is in an attacker's hands: every later read is hashed and compared with the digest checked
//! on the first pass ([`MemberBytes::load`], [`MemberBytes::copy_to`]), so bytes that changed
//! on the medium are refused ([`BundleError::ChangedOnMedium`]) instead of being signed or
//! carried into a response. A [`Spool`]'s bytes are not hashed again: it has no name, only
//! the process that wrote it reaches it, and they end up in a bundle whose every reader
//! checks them against the digests recorded when they were appended.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::codec::{parse_manifest, MEMBER_MODE};
use super::error::{member_err, BundleError};
use super::schema::*;
use super::validate::{doc_name, member_rank};
use crate::archive::{self, ArchiveError, EntryProblem, Limits};
use crate::fsutil::FsError;
use crate::metadata::{SignedTargets, TargetsFacts};

/// Chunk size for copying members between files.
const COPY_CHUNK: usize = 1 << 20;

/// A file members are read from by offset: a bundle file being read, or a [`Spool`].
#[derive(Debug)]
pub(super) struct FileSource {
    /// Shown in errors.
    path: PathBuf,
    file: File,
    /// Whether bytes read back are checked against their digest: always for a bundle file
    /// (its medium is not trusted); not for a spool, which has no name (only this process
    /// reaches it) and whose bytes end up in a bundle whose every reader checks them.
    recheck: bool,
}

impl FileSource {
    /// Fills `buf` from `offset`, without moving any cursor (so several threads may read).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt;
            self.file.read_exact_at(buf, offset)
        }
        #[cfg(windows)]
        {
            use std::os::windows::fs::FileExt;
            let mut done = 0;
            while done < buf.len() {
                match self
                    .file
                    .seek_read(&mut buf[done..], offset + done as u64)?
                {
                    0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                    n => done += n,
                }
            }
            Ok(())
        }
    }

    fn read_error(&self, source: io::Error) -> BundleError {
        BundleError::File(FsError::Read {
            path: self.path.clone(),
            source,
        })
    }
}

/// The bytes of one member: a range of a shared buffer (the bundle's tar stream once it is
/// built or read in memory, so members are not a second copy of it), or a range of a file
/// with the digest it must have (see the module documentation).
#[derive(Clone)]
pub(super) enum MemberBytes {
    /// `buf[start..end]`.
    Memory {
        /// The shared buffer.
        buf: Arc<Vec<u8>>,
        /// First byte.
        start: usize,
        /// One past the last byte.
        end: usize,
    },
    /// `len` bytes at `offset` of `src`, whose SHA-256 is `sha256`.
    File {
        /// The file.
        src: Arc<FileSource>,
        /// Where the member starts.
        offset: u64,
        /// Its size.
        len: usize,
        /// The digest it had when it was checked.
        sha256: Sha256Digest,
    },
}

impl MemberBytes {
    /// A member of its own.
    pub(super) fn own(data: Vec<u8>) -> MemberBytes {
        let end = data.len();
        MemberBytes::Memory {
            buf: Arc::new(data),
            start: 0,
            end,
        }
    }

    /// Size in bytes.
    pub(super) fn len(&self) -> usize {
        match self {
            MemberBytes::Memory { start, end, .. } => end - start,
            MemberBytes::File { len, .. } => *len,
        }
    }

    /// The bytes when they are in memory.
    pub(super) fn in_memory(&self) -> Option<&[u8]> {
        match self {
            MemberBytes::Memory { buf, start, end } => Some(&buf[*start..*end]),
            MemberBytes::File { .. } => None,
        }
    }

    /// The digest, when it is known without reading (a member kept in a file).
    pub(super) fn known_digest(&self) -> Option<Sha256Digest> {
        match self {
            MemberBytes::Memory { .. } => None,
            MemberBytes::File { sha256, .. } => Some(*sha256),
        }
    }

    /// SHA-256 of the bytes (read and checked for a member kept in a file).
    pub(super) fn digest(&self, name: &str) -> Result<Sha256Digest, BundleError> {
        match self {
            MemberBytes::Memory { .. } => Ok(Sha256Digest::of(&self.load(name)?)),
            MemberBytes::File { sha256, .. } => {
                // Read through once, so that bytes changed since they were checked fail here.
                self.copy_to(name, &mut |_| Ok(()))?;
                Ok(*sha256)
            }
        }
    }

    /// The bytes of member `name`: borrowed when in memory; read from the file and checked
    /// against the digest they had when first checked otherwise.
    pub(super) fn load(&self, name: &str) -> Result<Cow<'_, [u8]>, BundleError> {
        match self {
            MemberBytes::Memory { buf, start, end } => Ok(Cow::Borrowed(&buf[*start..*end])),
            MemberBytes::File { len, .. } => {
                let mut data = Vec::with_capacity(*len);
                self.copy_to(name, &mut |piece| {
                    data.extend_from_slice(piece);
                    Ok(())
                })?;
                Ok(Cow::Owned(data))
            }
        }
    }

    /// Gives the bytes of member `name` to `emit` in pieces; a member kept in a file is
    /// checked against its digest once all pieces were given (so a caller writing them
    /// must discard its output on error).
    pub(super) fn copy_to(
        &self,
        name: &str,
        emit: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<(), BundleError> {
        match self {
            MemberBytes::Memory { buf, start, end } => emit(&buf[*start..*end]).map_err(write_err),
            MemberBytes::File {
                src,
                offset,
                len,
                sha256,
            } => {
                let mut hasher = src.recheck.then(Sha256::new);
                let mut chunk = vec![0; COPY_CHUNK.min(*len)];
                let mut done = 0usize;
                while done < *len {
                    let n = (*len - done).min(COPY_CHUNK);
                    src.read_at(offset + done as u64, &mut chunk[..n])
                        .map_err(|e| src.read_error(e))?;
                    if let Some(h) = hasher.as_mut() {
                        h.update(&chunk[..n]);
                    }
                    emit(&chunk[..n]).map_err(write_err)?;
                    done += n;
                }
                let digest = hasher.map(|h| Sha256Digest(h.finalize().into()));
                if digest.is_some_and(|d| d != *sha256) {
                    return Err(changed(name, src));
                }
                Ok(())
            }
        }
    }
}

/// The environment variable of [`change_after_read`] (test builds only).
pub const CHANGE_AFTER_READ_ENV: &str = "OFFLINE_TUF_CHANGE_AFTER_READ";

/// A seam of test builds (feature `test-hooks`, like [`crate::fsutil::crash_point`]): when
/// `OFFLINE_TUF_CHANGE_AFTER_READ` names a member of `members` left in the bundle file
/// just read, one byte in the middle of it is changed in the file — what a failing or
/// hostile medium (or another process) does to a file under its reader. Shipped builds do
/// nothing here.
pub(super) fn change_after_read(members: &Members) {
    #[cfg(all(unix, any(test, feature = "test-hooks")))]
    if let Some(MemberBytes::File {
        src, offset, len, ..
    }) = std::env::var(CHANGE_AFTER_READ_ENV)
        .ok()
        .and_then(|name| members.get(&name))
    {
        use std::os::unix::fs::FileExt;
        let at = offset + (*len as u64) / 2;
        let change = || -> io::Result<()> {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&src.path)?;
            let mut byte = [0u8; 1];
            file.read_exact_at(&mut byte, at)?;
            byte[0] ^= 0x01;
            file.write_all_at(&byte, at)?;
            file.sync_all()
        };
        if let Err(e) = change() {
            eprintln!(
                "{CHANGE_AFTER_READ_ENV}: cannot change {}: {e}",
                src.path.display()
            );
        }
    }
    #[cfg(not(all(unix, any(test, feature = "test-hooks"))))]
    let _ = members;
}

fn changed(name: &str, src: &FileSource) -> BundleError {
    BundleError::ChangedOnMedium {
        name: name.to_string(),
        path: src.path.clone(),
    }
}

fn write_err(source: io::Error) -> BundleError {
    BundleError::Write(source)
}

/// Member bytes by name (except the manifest).
pub(super) type Members = BTreeMap<String, MemberBytes>;

/// The bytes of one targets document given to
/// [`TransferBundle::new_request`](super::TransferBundle::new_request): in memory
/// (`Vec<u8>` converts into it) or appended to a [`Spool`].
#[derive(Clone)]
pub struct MemberData(pub(super) MemberBytes);

impl From<Vec<u8>> for MemberData {
    fn from(data: Vec<u8>) -> MemberData {
        MemberData(MemberBytes::own(data))
    }
}

impl std::fmt::Debug for MemberData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MemberData({} bytes)", self.0.len())
    }
}

impl MemberData {
    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }
}

/// A scratch file that documents are appended to while a request is gathered, so that a
/// request of any size is assembled without holding its documents in memory. It has no name
/// (it is unlinked as soon as it is created), so nothing is left behind, whatever happens.
#[derive(Debug)]
pub struct Spool {
    src: Arc<FileSource>,
    len: u64,
}

impl Spool {
    /// A new, empty spool in `dir` (the directory the bundle will be written to, so that
    /// it is on the same medium and space runs out there first).
    pub fn new_in(dir: &Path) -> Result<Spool, BundleError> {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let file = tempfile::tempfile_in(dir).map_err(|source| {
            BundleError::File(FsError::CreateTemp {
                dir: dir.to_path_buf(),
                source,
            })
        })?;
        Ok(Spool {
            src: Arc::new(FileSource {
                path: dir.join("(temporary spool file)"),
                file,
                recheck: false,
            }),
            len: 0,
        })
    }

    /// Appends one document; the result stands for its bytes (checked against their digest
    /// whenever they are read back).
    pub fn append(&mut self, bytes: &[u8]) -> Result<MemberData, BundleError> {
        (&self.src.file).write_all(bytes).map_err(write_err)?;
        let member = MemberBytes::File {
            src: Arc::clone(&self.src),
            offset: self.len,
            len: bytes.len(),
            sha256: Sha256Digest::of(bytes),
        };
        self.len += bytes.len() as u64;
        Ok(MemberData(member))
    }

    /// Bytes appended so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was appended.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The canonical tar stream of a bundle (`manifest` first, then `order`), given to `emit` in
/// pieces. Members kept in files are read and checked as they are copied.
pub(super) fn encode_stream(
    manifest: &[u8],
    order: &[&str],
    members: &Members,
    emit: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> Result<(), BundleError> {
    const ZEROS: [u8; 1024] = [0; 1024];
    let mut piece = |name: &str, data: &MemberBytes| -> Result<(), BundleError> {
        let header = archive::canonical_header(name, data.len() as u64, MEMBER_MODE)?;
        emit(&header).map_err(write_err)?;
        data.copy_to(name, emit)?;
        emit(&ZEROS[..archive::padding(data.len() as u64)]).map_err(write_err)
    };
    piece(MANIFEST, &MemberBytes::own(manifest.to_vec()))?;
    for name in order {
        let data = members
            .get(*name)
            .ok_or_else(|| BundleError::MissingMember((*name).to_string()))?;
        piece(name, data)?;
    }
    emit(&ZEROS).map_err(write_err)
}

/// [`encode_stream`] into `out`, with `hasher` updated with every byte written: the stream
/// is made on this thread (members read and checked against their digests) and hashed and
/// written on another, in pieces of [`COPY_CHUNK`], a few of which wait between the two.
/// The bytes and their order are those of [`encode_stream`]. On a failure of either side the
/// other stops; the error told is the first cause (a member that changed, a write that
/// failed), and what was written must be discarded by the caller.
pub(super) fn encode_stream_hashed(
    manifest: &[u8],
    order: &[&str],
    members: &Members,
    hasher: &mut Sha256,
    out: &mut (dyn Write + Send),
) -> Result<(), BundleError> {
    /// Said by the making side when the writing side stopped (its error is the one told).
    const WRITER_STOPPED: &str = "the bundle writer stopped";
    std::thread::scope(|scope| {
        let (pieces, received) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let writer = scope.spawn(move || -> io::Result<()> {
            for piece in received {
                hasher.update(&piece);
                out.write_all(&piece)?;
            }
            Ok(())
        });
        let mut buf = Vec::with_capacity(COPY_CHUNK);
        let send = |buf: &mut Vec<u8>| {
            let full = std::mem::replace(buf, Vec::with_capacity(COPY_CHUNK));
            pieces
                .send(full)
                .map_err(|_| io::Error::other(WRITER_STOPPED))
        };
        let made = encode_stream(manifest, order, members, &mut |piece| {
            buf.extend_from_slice(piece);
            if buf.len() >= COPY_CHUNK {
                send(&mut buf)?;
            }
            Ok(())
        })
        .and_then(|()| send(&mut buf).map_err(write_err));
        drop(pieces);
        let written = writer
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        match (made, written) {
            (_, Err(e)) => Err(write_err(e)),
            (Err(e), Ok(())) => Err(e),
            (Ok(()), Ok(())) => Ok(()),
        }
    })
}

/// SHA-256 of the canonical tar stream of a bundle (see [`encode_stream`]).
pub(super) fn stream_digest(
    manifest: &[u8],
    order: &[&str],
    members: &Members,
) -> Result<Sha256Digest, BundleError> {
    let mut hasher = Sha256::new();
    encode_stream(manifest, order, members, &mut |piece| {
        hasher.update(piece);
        Ok(())
    })?;
    Ok(Sha256Digest(hasher.finalize().into()))
}

/// What one pass over a plain-tar bundle file found (see [`scan_file`]).
pub(super) struct Scanned {
    /// The manifest, parsed and checked (format, canonical form, checksum).
    pub(super) manifest: Manifest,
    /// Its bytes as stored (canonical).
    pub(super) manifest_bytes: Vec<u8>,
    /// Member names in archive order (manifest excluded).
    pub(super) order: Vec<String>,
    /// The members: targets documents stay in the file.
    pub(super) members: Members,
    /// SHA-256 of the whole stream.
    pub(super) digest: Sha256Digest,
    /// What checking every targets document learned of it (its summary, where its `signed`
    /// text is), by member name.
    pub(super) doc_facts: BTreeMap<String, TargetsFacts>,
}

/// Reads a plain-tar bundle file in one pass, holding one member at a time: every header
/// must be the canonical one for its name and size, padding and the end marker must be
/// zeros and the file must end there, the first member must be a manifest that parses and
/// whose checksum holds, and every member must be listed there with its size and digest;
/// targets documents are checked to parse ([`SignedTargets::check_json`]) and left in the
/// file. The layout, order and content checks the in-memory reader makes follow in
/// [`super::TransferBundle`].
///
/// On any refusal the caller reads the file again the strict in-memory way when it is small
/// enough, so that the error is the precise one (a symbolic link named as such rather than
/// "not canonical").
pub(super) fn scan_file(path: &Path, limits: &Limits) -> Result<Scanned, BundleError> {
    // Documents are checked on every core while this thread reads and hashes (hashing is the
    // lighter part); a few wait in the channel, so memory stays a few documents whatever the
    // bundle's size.
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let (to_check, checks) = std::sync::mpsc::sync_channel::<(String, Vec<u8>)>(2 * workers);
    let checks = std::sync::Mutex::new(checks);
    std::thread::scope(|scope| {
        let checkers: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let next = checks
                            .lock()
                            .map_err(|_| ())
                            .and_then(|r| r.recv().map_err(|_| ()));
                        let Ok((name, data)) = next else { break };
                        let facts =
                            SignedTargets::read_facts(&data).map_err(|e| member_err(&name, e));
                        done.push((name, facts));
                    }
                    done
                })
            })
            .collect();
        let scanned = scan_members(path, limits, &to_check);
        drop(to_check);
        let mut checked: Vec<(String, Result<TargetsFacts, BundleError>)> = checkers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect();
        let mut scanned = scanned?;
        // The first refused document in archive order, whatever thread checked it.
        let rank = |n: &str| scanned.order.iter().position(|o| o == n);
        checked.sort_by_key(|(n, _)| rank(n));
        for (name, facts) in checked {
            scanned.doc_facts.insert(name, facts?);
        }
        Ok(scanned)
    })
}

/// The reading pass of [`scan_file`]: targets documents are sent to `to_check` (and left in
/// the file); everything else is checked here.
fn scan_members(
    path: &Path,
    limits: &Limits,
    to_check: &std::sync::mpsc::SyncSender<(String, Vec<u8>)>,
) -> Result<Scanned, BundleError> {
    let read_err = |source| {
        BundleError::File(FsError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let file = File::open(path).map_err(read_err)?;
    let src = Arc::new(FileSource {
        path: path.to_path_buf(),
        file: file.try_clone().map_err(read_err)?,
        recheck: true,
    });
    let mut reader = HashingReader {
        inner: BufReader::with_capacity(COPY_CHUNK, file),
        hasher: Sha256::new(),
        pos: 0,
    };
    let not_canonical = |what: String| BundleError::NotCanonical(what);
    let mut manifest: Option<(Manifest, HashMap<String, MemberDigest>, Vec<u8>)> = None;
    let mut order = Vec::new();
    let mut members = Members::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut block = [0u8; 512];
    let mut last = String::new();
    let mut count = 0usize;
    loop {
        match reader.fill(&mut block) {
            Ok(true) => {}
            Ok(false) if reader.pos == 0 => return Err(ArchiveError::Empty.into()),
            Ok(false) => return Err(ArchiveError::MissingEndMarker { last }.into()),
            Err(e) => return Err(read_err(e)),
        }
        if block.iter().all(|&b| b == 0) {
            // The end marker: a second zero block, then nothing.
            match reader.fill(&mut block) {
                Ok(true) if block.iter().all(|&b| b == 0) => {}
                Ok(_) => return Err(ArchiveError::MissingEndMarker { last }.into()),
                Err(e) => return Err(read_err(e)),
            }
            let mut more = [0u8; 1];
            match reader.inner.read(&mut more) {
                Ok(0) => break,
                Ok(_) => {
                    return Err(not_canonical(
                        "data follows the end-of-archive marker".into(),
                    ))
                }
                Err(e) => return Err(read_err(e)),
            }
        }
        let (raw_name, size) = archive::header_name_size(&block)
            .ok_or_else(|| not_canonical(format!("unreadable tar header after {last:?}")))?;
        let name = String::from_utf8(raw_name)
            .map_err(|_| not_canonical(format!("a member name after {last:?} is not UTF-8")))?;
        let refuse = |problem| -> BundleError {
            ArchiveError::Entry {
                entry: name.clone(),
                problem,
            }
            .into()
        };
        archive::validate_name(&name).map_err(refuse)?;
        if archive::canonical_header(&name, size, MEMBER_MODE)? != block {
            return Err(not_canonical(format!(
                "the tar header of {name} differs from the canonical encoding"
            )));
        }
        count += 1;
        if count > limits.max_entries {
            return Err(ArchiveError::TooManyEntries {
                limit: limits.max_entries,
            }
            .into());
        }
        if size > limits.max_member_size {
            return Err(refuse(EntryProblem::TooLarge {
                size,
                limit: limits.max_member_size,
            }));
        }
        if let Some(first) = seen.insert(name.to_lowercase(), name.clone()) {
            return Err(refuse(EntryProblem::Duplicate { first }));
        }
        let offset = reader.pos;
        let len = size as usize;
        let mut data = vec![0u8; len];
        match reader.fill(&mut data) {
            Ok(true) => {}
            Ok(false) => return Err(refuse(EntryProblem::Truncated { got: 0, size })),
            Err(e) => return Err(read_err(e)),
        }
        let mut pad = [0u8; 512];
        let pad = &mut pad[..archive::padding(size)];
        match reader.fill(pad) {
            Ok(true) if pad.iter().all(|&b| b == 0) => {}
            Ok(true) => {
                return Err(not_canonical(format!(
                    "the padding after {name} is not zeros"
                )))
            }
            Ok(false) => return Err(ArchiveError::MissingEndMarker { last: name }.into()),
            Err(e) => return Err(read_err(e)),
        }
        last.clone_from(&name);
        let Some((_, listed, _)) = &manifest else {
            if name != MANIFEST {
                return Err(BundleError::NotABundle(format!(
                    "first member is {name:?}, expected {MANIFEST}"
                )));
            }
            let m = parse_manifest(&data)?;
            let listed = m
                .members
                .iter()
                .map(|e| (e.name.clone(), e.clone()))
                .collect::<HashMap<_, _>>();
            if listed.len() != m.members.len() {
                return Err(BundleError::Manifest("a member is listed twice".into()));
            }
            manifest = Some((m, listed, data));
            continue;
        };
        if name == MANIFEST {
            return Err(BundleError::UnexpectedMember(name));
        }
        let entry = listed
            .get(&name)
            .ok_or_else(|| BundleError::UnlistedMember(name.clone()))?;
        if entry.size != size {
            return Err(BundleError::SizeMismatch {
                name,
                expected: entry.size,
                actual: size,
            });
        }
        let actual = Sha256Digest::of(&data);
        if actual != entry.sha256 {
            return Err(BundleError::DigestMismatch {
                name,
                expected: entry.sha256,
                actual,
            });
        }
        if member_rank(&name).is_none() {
            return Err(BundleError::UnexpectedMember(name));
        }
        let is_doc =
            doc_name(&name, PROD_TARGETS_DIR).is_some() || doc_name(&name, WAVES_DIR).is_some();
        let bytes = if is_doc {
            // A checker that stopped has failed on an earlier document: its error is told.
            let _ = to_check.send((name.clone(), data));
            MemberBytes::File {
                src: Arc::clone(&src),
                offset,
                len,
                sha256: actual,
            }
        } else {
            MemberBytes::own(data)
        };
        order.push(name.clone());
        members.insert(name, bytes);
    }
    let (manifest, _, manifest_bytes) =
        manifest.ok_or_else(|| BundleError::NotABundle("the archive is empty".into()))?;
    Ok(Scanned {
        manifest,
        manifest_bytes,
        order,
        members,
        digest: Sha256Digest(reader.hasher.finalize().into()),
        doc_facts: BTreeMap::new(),
    })
}

/// A reader that hashes what it reads and counts it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    pos: u64,
}

impl<R: Read> HashingReader<R> {
    /// Fills `buf` completely (`Ok(true)`), or finds the end of the file before its first
    /// byte (`Ok(false)`); ending part-way is an `UnexpectedEof` error.
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        let mut done = 0;
        while done < buf.len() {
            match self.inner.read(&mut buf[done..]) {
                Ok(0) if done == 0 => return Ok(false),
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.hasher.update(&buf[..]);
        self.pos += buf.len() as u64;
        Ok(true)
    }
}
