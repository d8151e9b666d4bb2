//! The signer's append-only, hash-chained audit log.
//!
//! Every key created, restored or exported, every signature made and every bundle written
//! on the offline machine is recorded in `<state dir>/audit.log`: one JSON object per line
//! (mode 0600, opened with `O_APPEND`, `fsync`ed after each append of a run's records).
//! Nothing secret is ever recorded: keyids, file paths and SHA-256 digests only.
//!
//! Each record carries
//!
//! ```json
//! {"seq":3,"time":"2026-03-01T10:20:30Z","signer_version":"0.1.0",
//!  "prev":"<sha256 hex of the previous line>","event":{"event":"signature-made",…}}
//! ```
//!
//! (on one line). `seq` counts from 1 and `prev` is the SHA-256 of the previous line's exact
//! bytes (without its newline), 64 zeros for the first record. Editing, inserting or
//! deleting a line therefore breaks the chain at the next line. So that removing the *last*
//! lines is detected too, `<state dir>/audit.head` holds the `seq` and hash of the last
//! record; it is replaced atomically after every append.
//!
//! [`record`] refuses to append to a log that does not match its head (the evidence would
//! be overwritten); `signer audit verify` says what is wrong and where. The one tolerated
//! mismatch is a head behind the log by the records of one run: the records a run makes
//! together (e.g. one per document signed, [`record_all`]) are appended in one write, then
//! the head is updated once, and a run interrupted in between leaves the head naming the
//! record before them; those records all carry the run's time.
//!
//! This makes tampering *evident* to anyone who compares the log with itself and its head;
//! it does not stop someone with write access to the state directory from rewriting both.
//! Keep a copy of `audit.head` (or note its hash) with your backups to pin a point in time.

use std::fs::OpenOptions;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::fsutil::{self, FsError};
use shared::keys::KeyId;
use shared::metadata::Timestamp;

use crate::ctx::Ctx;
use crate::error::SignerError;
use crate::ui::Ui;

/// File name of the log inside the signer state directory.
pub const AUDIT_LOG: &str = "audit.log";

/// File name of the head record inside the signer state directory.
pub const AUDIT_HEAD: &str = "audit.head";

/// `prev` of the first record.
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Largest audit log read (far above anything a signer will write).
const MAX_LOG: u64 = 256 * 1024 * 1024;

/// Something worth remembering that happened on the offline machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "event",
    rename_all = "kebab-case",
    rename_all_fields = "kebab-case"
)]
pub enum AuditEvent {
    /// A key pair was generated and stored in a keys tarball.
    KeyCreated {
        /// Key id of the new key.
        keyid: KeyId,
        /// `root` or `targets`.
        role: String,
        /// `ED25519` or `RSA`.
        keytype: String,
        /// The tarball it was stored in.
        tarball: String,
    },
    /// A keys tarball created by a run was removed again because the run failed before it
    /// wrote the response that was to reference its keys (e.g. a full disk).
    KeysFileDiscarded {
        /// The removed tarball.
        tarball: String,
    },
    /// A key pair was restored from a paper backup (or another export) into a tarball.
    KeyRestored {
        /// Key id of the restored key.
        keyid: KeyId,
        /// `root` or `targets`.
        role: String,
        /// The tarball it was added to.
        tarball: String,
        /// Where it came from (sheet or groups file path).
        source: String,
    },
    /// A private key left the tarball in another form.
    KeyExported {
        /// Key id of the exported key.
        keyid: KeyId,
        /// `json-file` (export-root) or `paper` (print).
        form: String,
        /// The file written.
        path: String,
    },
    /// A keys tarball was copied to backup media and verified.
    TarballBackedUp {
        /// The source tarball.
        source: String,
        /// The copy.
        copy: String,
        /// SHA-256 (hex) of both.
        sha256: String,
    },
    /// A restore drill proved that a backup signs for the factory's current root
    /// (`keys drill`; the throwaway signature is not kept).
    BackupDrilled {
        /// Key id of the root key the backup holds.
        keyid: KeyId,
        /// What the backup was (form and path).
        backup: String,
        /// The factory.
        factory: String,
        /// Version of the current root it was verified against.
        #[serde(alias = "root_version")]
        root_version: u64,
    },
    /// The trusted root pinned for a factory advanced to the current root of a bundle whose
    /// chain verified from it (a root applied on the server).
    PinAdvanced {
        /// The bundle's factory.
        factory: String,
        /// The pin file.
        pin: String,
        /// The version pinned before.
        #[serde(alias = "from_version")]
        from_version: u64,
        /// The version pinned now.
        #[serde(alias = "to_version")]
        to_version: u64,
        /// SHA-256 (hex) of the canonical `signed` bytes of the root pinned now.
        sha256: String,
    },
    /// A keys file was converted between plain and passphrase-encrypted (`keys encrypt`,
    /// `keys decrypt`) after the result was read back and found to hold the same keys.
    KeysFileConverted {
        /// The file converted.
        source: String,
        /// The file written.
        output: String,
        /// `encrypted` (age, passphrase) or `plain` (UNENCRYPTED private keys): the output.
        form: String,
        /// The keys it holds.
        keyids: Vec<KeyId>,
        /// Whether the source was removed afterwards (`--remove-source`).
        #[serde(alias = "source_removed")]
        source_removed: bool,
    },
    /// A signature was made.
    SignatureMade {
        /// The operation that made it (e.g. `rotate-offline-key --role root`).
        operation: String,
        /// The document signed (e.g. `ci-root`, `prod-root`, `prod-targets/main`).
        document: String,
        /// The keys that signed.
        keyids: Vec<KeyId>,
        /// SHA-256 (hex) of the exact bytes signed.
        sha256: String,
    },
    /// A bundle (response) was written.
    BundleWritten {
        /// Where.
        path: String,
        /// SHA-256 (hex) of the file.
        sha256: String,
    },
    /// The signer's age identity was created (or replaced).
    IdentityCreated {
        /// Its recipient.
        recipient: String,
        /// The identity file.
        path: String,
    },
    /// The signer's signing identity (signs the steps it adds to responses) was created.
    SigningIdentityCreated {
        /// Its public key (`ed25519:…`).
        identity: String,
        /// Its fingerprint.
        fingerprint: String,
    },
    /// Another key holder's signing identity was pinned as a cosigner.
    CosignerPinned {
        /// The name it was pinned under.
        name: String,
        /// Its public key (`ed25519:…`).
        identity: String,
    },
    /// A cosigner was unpinned.
    CosignerRemoved {
        /// The name it was pinned under.
        name: String,
        /// Its public key (`ed25519:…`).
        identity: String,
    },
    /// The operator confirmed a change that nothing else authorized, by typing its code.
    ChangeConfirmed {
        /// The change, as shown.
        change: String,
        /// The code typed.
        code: String,
    },
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the log, from 1.
    pub seq: u64,
    /// When (RFC 3339, UTC).
    pub time: String,
    /// Version of the signer that wrote it.
    #[serde(rename = "signer-version", alias = "signer_version")]
    pub signer_version: String,
    /// SHA-256 (hex) of the previous line, [`GENESIS_PREV`] for the first.
    pub prev: String,
    /// What happened.
    pub event: AuditEvent,
}

/// Content of `audit.head`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    /// `seq` of the last record.
    pub seq: u64,
    /// SHA-256 (hex) of the last line.
    pub sha256: String,
}

/// The result of a successful [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Number of records.
    pub records: u64,
    /// Time of the last record.
    pub last_time: Option<String>,
    /// SHA-256 of the last line (what `audit.head` pins).
    pub last_sha256: Option<String>,
    /// Things that are not tampering but worth saying (e.g. an interrupted head update).
    pub notes: Vec<String>,
}

/// Errors of the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The chain is broken: the log was edited, truncated or records were removed.
    #[error(
        "audit log {path} is damaged at line {line}: {reason}. Keep the file as evidence; to \
         continue, move it (and {AUDIT_HEAD}) away and a new log is started"
    )]
    Broken {
        /// The log.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// The head file does not match the log.
    #[error(
        "audit log {path} does not match {AUDIT_HEAD}: {reason}. Keep both files as evidence; \
         to continue, move them away and a new log is started"
    )]
    HeadMismatch {
        /// The log.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Creating the state directory failed.
    #[error("cannot create the signer state directory {path}: {source}")]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// Opening, reading, writing or syncing the log failed.
    #[error("cannot {action} audit log {path}: {source}")]
    Io {
        /// What was attempted.
        action: &'static str,
        /// The log.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// File helper errors (head file).
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// `signer audit …`: the offline machine's audit log.
#[derive(Debug, Clone, Subcommand)]
pub enum AuditCommand {
    /// Check the audit log's hash chain and its head record; fails if it was edited or
    /// truncated.
    Verify(VerifyArgs),
    /// Print the audit log (and whether its chain verifies).
    Show(ShowArgs),
}

/// Options of `signer audit verify`.
#[derive(Debug, Clone, Default, Args)]
pub struct VerifyArgs {
    /// Print JSON for scripts: `log`, `records`, `last-time`, `last-sha256`, `notes` (a
    /// damaged log still fails with the error, whatever the format).
    #[arg(long)]
    pub json: bool,
}

/// Options of `signer audit show`.
#[derive(Debug, Clone, Default, Args)]
pub struct ShowArgs {
    /// Print the raw JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Only the last N records.
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
}

/// Path of the audit log in `state_dir`.
pub fn log_path(state_dir: &Path) -> PathBuf {
    state_dir.join(AUDIT_LOG)
}

/// Path of the head file in `state_dir`.
pub fn head_path(state_dir: &Path) -> PathBuf {
    state_dir.join(AUDIT_HEAD)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The minimal view of a line needed to check the chain (tolerates unknown events).
#[derive(Deserialize)]
struct ChainView {
    seq: u64,
    prev: String,
    time: String,
}

/// Splits the log into lines; an incomplete last line is an error.
fn lines_of<'a>(path: &Path, content: &'a [u8]) -> Result<Vec<&'a [u8]>, AuditError> {
    if content.is_empty() {
        return Ok(Vec::new());
    }
    let mut lines = Vec::with_capacity(content.len() / 256);
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', content) {
        lines.push(&content[start..end]);
        start = end + 1;
    }
    lines.push(&content[start..]);
    // A complete log ends with '\n', which leaves one empty piece at the end.
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
        Ok(lines)
    } else {
        Err(incomplete(path, lines.len() as u64))
    }
}

/// Checks the chain over `lines`; returns the views of the lines.
fn check_chain(path: &Path, lines: &[&[u8]]) -> Result<Vec<ChainView>, AuditError> {
    let mut views = Vec::with_capacity(lines.len());
    let mut prev_hash = GENESIS_PREV.to_string();
    for (i, line) in lines.iter().enumerate() {
        let n = i as u64 + 1;
        let broken = |reason: String| AuditError::Broken {
            path: path.to_path_buf(),
            line: n,
            reason,
        };
        let view: ChainView = serde_json::from_slice(line).map_err(|_| {
            broken("not a valid audit record (it was edited, or the file is corrupt)".to_string())
        })?;
        if view.seq != n {
            return Err(broken(if view.seq > n {
                format!(
                    "expected record {n} but found record {}: {} record(s) before it were deleted",
                    view.seq,
                    view.seq - n
                )
            } else {
                format!(
                    "expected record {n} but found record {}: records were duplicated or reordered",
                    view.seq
                )
            }));
        }
        if view.prev != prev_hash {
            return Err(broken(if n == 1 {
                "the first record does not start the chain: records before it were deleted"
                    .to_string()
            } else {
                format!(
                    "its link to line {} does not match: line {} was edited (or a line was \
                     inserted or removed there)",
                    n - 1,
                    n - 1
                )
            }));
        }
        prev_hash = sha256_hex(line);
        views.push(view);
    }
    Ok(views)
}

fn read_head(state_dir: &Path) -> Result<Option<AuditHead>, AuditError> {
    let path = head_path(state_dir);
    match fsutil::read_limited(&path, 4096) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|_| AuditError::HeadMismatch {
                    path: log_path(state_dir),
                    reason: format!("{} is not a valid head record", path.display()),
                })
        }
        Err(FsError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// What [`check_head`] needs to know of a log.
trait LogView {
    /// How many records it holds.
    fn records(&self) -> u64;
    /// The SHA-256 (hex) of record `seq` (counted from 1), when known.
    fn hash_of(&self, seq: u64) -> Option<String>;
    /// Whether the records after the first `from` are one run's: all carry the time of the
    /// last record (a run records everything at its start time).
    fn one_run_after(&self, from: u64) -> bool;
}

/// A whole log read in memory (`signer audit verify`).
impl LogView for [&[u8]] {
    fn records(&self) -> u64 {
        self.len() as u64
    }

    fn hash_of(&self, seq: u64) -> Option<String> {
        usize::try_from(seq)
            .ok()
            .and_then(|s| s.checked_sub(1))
            .and_then(|i| self.get(i))
            .map(|l| sha256_hex(l))
    }

    fn one_run_after(&self, from: u64) -> bool {
        let Some(last) = self.last().and_then(|l| record_time(l)) else {
            return false;
        };
        usize::try_from(from)
            .ok()
            .and_then(|from| self.get(from..))
            .is_some_and(|after| after.iter().all(|l| record_time(l).as_ref() == Some(&last)))
    }
}

/// The `time` of a record line.
fn record_time(line: &[u8]) -> Option<String> {
    serde_json::from_slice::<ChainView>(line)
        .ok()
        .map(|v| v.time)
}

/// Compares the log with the head; returns notes for the tolerated case.
fn check_head<L: LogView + ?Sized>(
    path: &Path,
    log: &L,
    head: Option<&AuditHead>,
) -> Result<Vec<String>, AuditError> {
    let mismatch = |reason: String| AuditError::HeadMismatch {
        path: path.to_path_buf(),
        reason,
    };
    let n = log.records();
    let hash_of = |seq: u64| log.hash_of(seq);
    match head {
        None if n == 0 => Ok(Vec::new()),
        None if n == 1 => Ok(vec![format!(
            "{AUDIT_HEAD} is missing; the first record was written but the head was not \
             (an interrupted run)"
        )]),
        None => Err(mismatch(format!(
            "{AUDIT_HEAD} is missing while the log has {n} records (it was deleted)"
        ))),
        Some(h) if h.seq == n && hash_of(n).as_deref() == Some(h.sha256.as_str()) => Ok(Vec::new()),
        Some(h) if h.seq == n => Err(mismatch(format!(
            "the last record (line {n}) differs from the one the head pins: it was edited"
        ))),
        Some(h)
            if h.seq < n
                && hash_of(h.seq).as_deref() == Some(h.sha256.as_str())
                && log.one_run_after(h.seq) =>
        {
            Ok(vec![format!(
                "{} written but {AUDIT_HEAD} still names record {} (an interrupted run); it \
                 will be brought up to date by the next record",
                if h.seq + 1 == n {
                    format!("record {n} was")
                } else {
                    format!("records {}-{n} were", h.seq + 1)
                },
                h.seq
            )])
        }
        Some(h) if h.seq > n => Err(mismatch(format!(
            "the head names record {} but the log ends at record {n}: the last {} record(s) \
             were deleted",
            h.seq,
            h.seq - n
        ))),
        Some(h) => Err(mismatch(format!(
            "the head names record {} but the log has {n} records that do not continue from it",
            h.seq
        ))),
    }
}

/// What appending needs of the log, read in one pass in pieces (memory does not grow with
/// the log): the number of records, the last one, the hash of the one the head names, and
/// whether the records after it are one run's.
struct LogTail {
    records: u64,
    last: Option<Vec<u8>>,
    /// `(seq, hash)` of the record the head names.
    pinned: Option<(u64, String)>,
    /// Whether every record after the one the head names carries the same time (and parses).
    same_time_after_pinned: bool,
}

impl LogTail {
    /// Reads `file` (the log at `path`) from its start; `head` says which record to hash.
    fn read(
        path: &Path,
        file: &std::fs::File,
        head: Option<&AuditHead>,
    ) -> Result<LogTail, AuditError> {
        let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
        let mut tail = LogTail {
            records: 0,
            last: None,
            pinned: None,
            same_time_after_pinned: true,
        };
        let pinned_seq = head.map(|h| h.seq);
        let mut time_after_pinned: Option<String> = None;
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = reader
                .read_until(b'\n', &mut line)
                .map_err(|source| AuditError::Io {
                    action: "read",
                    path: path.to_path_buf(),
                    source,
                })?;
            if read == 0 {
                break;
            }
            if line.pop() != Some(b'\n') {
                return Err(incomplete(path, tail.records + 1));
            }
            tail.records += 1;
            match pinned_seq {
                Some(seq) if seq == tail.records => {
                    tail.pinned = Some((seq, sha256_hex(&line)));
                }
                Some(seq) if seq < tail.records && tail.same_time_after_pinned => {
                    let time = record_time(&line);
                    match (&time_after_pinned, time) {
                        (_, None) => tail.same_time_after_pinned = false,
                        (None, Some(t)) => time_after_pinned = Some(t),
                        (Some(first), Some(t)) => tail.same_time_after_pinned = *first == t,
                    }
                }
                _ => {}
            }
            std::mem::swap(tail.last.get_or_insert_with(Vec::new), &mut line);
        }
        Ok(tail)
    }
}

impl LogView for LogTail {
    fn records(&self) -> u64 {
        self.records
    }

    fn hash_of(&self, seq: u64) -> Option<String> {
        match (&self.pinned, &self.last) {
            (Some((pinned, hash)), _) if *pinned == seq => Some(hash.clone()),
            (_, Some(last)) if seq == self.records => Some(sha256_hex(last)),
            _ => None,
        }
    }

    fn one_run_after(&self, from: u64) -> bool {
        self.pinned.as_ref().is_some_and(|(seq, _)| *seq == from) && self.same_time_after_pinned
    }
}

/// The error of a log whose record `line` has no newline at its end.
fn incomplete(path: &Path, line: u64) -> AuditError {
    AuditError::Broken {
        path: path.to_path_buf(),
        line,
        reason: "the last record is incomplete (no newline at the end): a write was \
                 interrupted or the file was cut"
            .to_string(),
    }
}

/// Appends `event`, which happened at `time`, to the audit log in `state_dir` and returns
/// the record written (see [`record_all`]).
pub fn record(
    state_dir: &Path,
    time: &Timestamp,
    event: AuditEvent,
) -> Result<AuditRecord, AuditError> {
    let mut written = record_all(state_dir, time, vec![event])?;
    Ok(written.remove(0))
}

/// Appends `events`, which happened at `time`, in order, to the audit log in `state_dir`
/// and returns the records written: one write and one `fsync` of the log, then one update
/// of the head, however many records (a run that signs a thousand documents reads the log
/// once and syncs it once, not a thousand times).
///
/// The state directory is created (0700) if needed. Refuses to append to a log that does
/// not verify against its head. Nothing is written for no events.
pub fn record_all(
    state_dir: &Path,
    time: &Timestamp,
    events: Vec<AuditEvent>,
) -> Result<Vec<AuditRecord>, AuditError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    crate::identity::ensure_state_dir(state_dir).map_err(|source| AuditError::StateDir {
        path: state_dir.to_path_buf(),
        source,
    })?;
    let path = log_path(state_dir);
    let io = |action: &'static str| {
        let path = path.clone();
        move |source| AuditError::Io {
            action,
            path,
            source,
        }
    };
    let mut options = OpenOptions::new();
    options.read(true).append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path).map_err(io("open"))?;
    // A head mismatch must stop us: appending would overwrite the head that proves the
    // truncation. Only the last record's link matters for appending.
    let head = read_head(state_dir)?;
    let tail = LogTail::read(&path, &file, head.as_ref())?;
    check_head(&path, &tail, head.as_ref())?;
    let (mut seq, mut prev) = match &tail.last {
        None => (1, GENESIS_PREV.to_string()),
        Some(last) => {
            let view: ChainView = serde_json::from_slice(last).map_err(|_| AuditError::Broken {
                path: path.clone(),
                line: tail.records,
                reason: "not a valid audit record".to_string(),
            })?;
            (view.seq + 1, sha256_hex(last))
        }
    };
    let mut records = Vec::with_capacity(events.len());
    let mut appended = Vec::new();
    for event in events {
        let rec = AuditRecord {
            seq,
            time: time.to_string(),
            signer_version: env!("CARGO_PKG_VERSION").to_string(),
            prev,
            event,
        };
        let line = serde_json::to_vec(&rec).map_err(|e| AuditError::Io {
            action: "encode a record for",
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        prev = sha256_hex(&line);
        appended.extend_from_slice(&line);
        appended.push(b'\n');
        records.push(rec);
        seq += 1;
    }
    // One write with O_APPEND: the records land at the end as a whole. A write that fails
    // part way (a full disk writes what fits) is cut off again, so that the log stays whole
    // and the next run can append; shrinking a file needs no space.
    let old_len = file.metadata().map_err(io("read"))?.len();
    let cut_back = |file: &std::fs::File| {
        let _ = file.set_len(old_len).and_then(|()| file.sync_all());
    };
    if let Err(e) = file.write_all(&appended).and_then(|()| file.sync_all()) {
        cut_back(&file);
        return Err(io("append to")(e));
    }
    let head = AuditHead {
        seq: seq - 1,
        sha256: prev,
    };
    let head_bytes = serde_json::to_vec(&head).unwrap_or_default();
    // A head that cannot be written (a full disk, a read-only directory) takes the record
    // back out of the log, so that log and head still agree; a crash in between is what
    // `check_head` tolerates.
    if let Err(e) = fsutil::write_atomic(head_path(state_dir), &head_bytes, 0o600) {
        // After the rename (only the directory sync failed) the new head is in place.
        if !matches!(e, FsError::SyncDir { .. }) {
            cut_back(&file);
        }
        return Err(e.into());
    }
    Ok(records)
}

/// Verifies the log in `state_dir` against its chain and head.
///
/// A state directory without a log (and without a head) verifies with zero records.
pub fn verify(state_dir: &Path) -> Result<VerifyReport, AuditError> {
    let path = log_path(state_dir);
    let content = match fsutil::read_limited(&path, MAX_LOG) {
        Ok(c) => c,
        Err(FsError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Vec::new()
        }
        Err(e) => return Err(e.into()),
    };
    let lines = lines_of(&path, &content)?;
    let views = check_chain(&path, &lines)?;
    let head = read_head(state_dir)?;
    let notes = check_head(&path, lines.as_slice(), head.as_ref())?;
    Ok(VerifyReport {
        records: views.len() as u64,
        last_time: views.last().map(|v| v.time.clone()),
        last_sha256: lines.last().map(|l| sha256_hex(l)),
        notes,
    })
}

/// Reads the records of the log (without verifying the chain; see [`verify`]).
///
/// Lines that are not valid records (e.g. from a newer signer) come back as `Err(raw line)`.
pub fn read_records(state_dir: &Path) -> Result<Vec<Result<AuditRecord, String>>, AuditError> {
    let path = log_path(state_dir);
    let content = match fsutil::read_limited(&path, MAX_LOG) {
        Ok(c) => c,
        Err(FsError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Vec::new())
        }
        Err(e) => return Err(e.into()),
    };
    Ok(content
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).map_err(|_| String::from_utf8_lossy(l).into_owned()))
        .collect())
}

/// One-line human summary of an event.
pub fn describe(event: &AuditEvent) -> String {
    match event {
        AuditEvent::KeyCreated {
            keyid,
            role,
            keytype,
            tarball,
        } => format!("key created: {role} {keytype} {keyid} in {tarball}"),
        AuditEvent::KeyRestored {
            keyid,
            role,
            tarball,
            source,
        } => format!("key restored: {role} {keyid} from {source} into {tarball}"),
        AuditEvent::KeysFileDiscarded { tarball } => {
            format!("keys file removed again (the run wrote no response): {tarball}")
        }
        AuditEvent::KeyExported { keyid, form, path } => {
            format!("PRIVATE KEY EXPORTED ({form}): {keyid} to {path}")
        }
        AuditEvent::TarballBackedUp {
            source,
            copy,
            sha256,
        } => format!("tarball backed up: {source} -> {copy} (sha256 {sha256})"),
        AuditEvent::BackupDrilled {
            keyid,
            backup,
            factory,
            root_version,
        } => format!(
            "backup drill passed: {backup} holds root key {keyid} of {factory} root v{root_version}"
        ),
        AuditEvent::PinAdvanced {
            factory,
            pin,
            from_version,
            to_version,
            sha256,
        } => format!(
            "trusted root of {factory} advanced from v{from_version} to v{to_version} (sha256 {sha256}) in {pin}"
        ),
        AuditEvent::KeysFileConverted {
            source,
            output,
            form,
            keyids,
            source_removed,
        } => format!(
            "keys file converted: {source} -> {output} ({form}; {} key(s){})",
            keyids.len(),
            if *source_removed {
                "; source removed"
            } else {
                ""
            }
        ),
        AuditEvent::SignatureMade {
            operation,
            document,
            keyids,
            sha256,
        } => {
            let ids: Vec<&str> = keyids.iter().map(KeyId::as_str).collect();
            format!(
                "signed {document} ({operation}) sha256 {sha256} with {}",
                ids.join(", ")
            )
        }
        AuditEvent::BundleWritten { path, sha256 } => {
            format!("bundle written: {path} (sha256 {sha256})")
        }
        AuditEvent::IdentityCreated { recipient, path } => {
            format!("identity created: {recipient} ({path})")
        }
        AuditEvent::SigningIdentityCreated {
            identity,
            fingerprint,
        } => format!("signing identity created: {identity} (fingerprint {fingerprint})"),
        AuditEvent::CosignerPinned { name, identity } => {
            format!("cosigner pinned: {name} = {identity}")
        }
        AuditEvent::CosignerRemoved { name, identity } => {
            format!("cosigner removed: {name} = {identity}")
        }
        AuditEvent::ChangeConfirmed { change, code } => {
            format!("change confirmed by typing {code}: {change}")
        }
    }
}

/// Runs `signer audit …`. Fails (non-zero exit) when the log does not verify.
pub fn run(ctx: &mut Ctx<'_>, cmd: &AuditCommand) -> Result<(), SignerError> {
    let state_dir = ctx.state.path();
    match cmd {
        AuditCommand::Verify(args) => {
            let report = verify(state_dir)?;
            if args.json {
                let value = serde_json::json!({
                    "log": log_path(state_dir),
                    "records": report.records,
                    "last-time": report.last_time,
                    "last-sha256": report.last_sha256,
                    "notes": report.notes,
                });
                ctx.ui
                    .line(serde_json::to_string_pretty(&value).unwrap_or_default());
            } else {
                print_report(ctx.ui, state_dir, &report);
            }
        }
        AuditCommand::Show(args) => {
            let records = read_records(state_dir)?;
            let skip = args
                .last
                .map(|n| records.len().saturating_sub(n))
                .unwrap_or(0);
            if args.json {
                let path = log_path(state_dir);
                let content = fsutil::read_limited(&path, MAX_LOG).unwrap_or_default();
                for line in content
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .skip(skip)
                {
                    ctx.ui.bytes(line);
                    ctx.ui.bytes(b"\n");
                }
                // Scripts check with `audit verify`; still refuse silently-broken output.
                verify(state_dir)?;
                return Ok(());
            }
            if records.is_empty() {
                ctx.ui.line(format!(
                    "The audit log {} is empty.",
                    log_path(state_dir).display()
                ));
            }
            for (i, r) in records.iter().enumerate().skip(skip) {
                match r {
                    Ok(rec) => ctx.ui.line(format!(
                        "{:>5}  {}  {}",
                        rec.seq,
                        rec.time,
                        describe(&rec.event)
                    )),
                    Err(raw) => ctx
                        .ui
                        .line(format!("{:>5}  (unreadable record) {raw}", i + 1)),
                }
            }
            ctx.ui.line("");
            let report = verify(state_dir)?;
            print_report(ctx.ui, state_dir, &report);
        }
    }
    Ok(())
}

/// "Audit log … verifies: …" (or that there are no records yet), then its notes.
fn print_report(ui: &mut Ui, state_dir: &Path, report: &VerifyReport) {
    match (&report.last_time, &report.last_sha256) {
        (Some(time), Some(hash)) => ui.line(format!(
            "Audit log {} verifies: {} record(s), chain intact, the last one ({time}) matches \
             {AUDIT_HEAD}. Last line sha256: {hash}",
            log_path(state_dir).display(),
            report.records
        )),
        _ => ui.line(format!(
            "No audit records yet in {}.",
            log_path(state_dir).display()
        )),
    }
    for note in &report.notes {
        ui.line(format!("note: {note}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctx::testing::{run_in, test_time};

    fn kid(n: u8) -> KeyId {
        KeyId::parse(&hex::encode([n; 32])).unwrap()
    }

    fn sample(n: u8) -> AuditEvent {
        AuditEvent::SignatureMade {
            operation: "rotate-offline-key --role root".into(),
            document: format!("ci-root-{n}"),
            keyids: vec![kid(n), kid(n + 1)],
            sha256: hex::encode([n; 32]),
        }
    }

    fn write_lines(state: &Path, lines: &[&[u8]]) {
        let mut content = Vec::new();
        for l in lines {
            content.extend_from_slice(l);
            content.push(b'\n');
        }
        std::fs::write(log_path(state), content).unwrap();
    }

    fn log_lines(state: &Path) -> Vec<Vec<u8>> {
        std::fs::read(log_path(state))
            .unwrap()
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    }

    #[test]
    fn records_are_kebab_case_and_lines_of_earlier_versions_still_read() {
        let old = format!(
            r#"{{"seq":1,"time":"2026-01-01T00:00:00Z","signer_version":"0.1.0","prev":"{}","event":{{"event":"backup-drilled","keyid":"{}","backup":"sheet","factory":"acme","root_version":3}}}}"#,
            "0".repeat(64),
            "ab".repeat(32)
        );
        let rec: AuditRecord = serde_json::from_str(&old).unwrap();
        assert!(matches!(
            rec.event,
            AuditEvent::BackupDrilled {
                root_version: 3,
                ..
            }
        ));
        let new = serde_json::to_string(&rec).unwrap();
        assert!(new.contains(r#""signer-version":"0.1.0""#), "{new}");
        assert!(new.contains(r#""root-version":3"#), "{new}");
        assert!(!new.contains('_'), "{new}");
    }

    #[test]
    fn records_chain_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(verify(dir.path()).unwrap().records, 0);
        let r1 = record(dir.path(), &test_time(), sample(1)).unwrap();
        let r2 = record(dir.path(), &test_time(), sample(2)).unwrap();
        record(
            dir.path(),
            &test_time(),
            AuditEvent::BundleWritten {
                path: "resp.tufbundle".into(),
                sha256: hex::encode([9u8; 32]),
            },
        )
        .unwrap();
        assert_eq!(r1.seq, 1);
        assert_eq!(r1.prev, GENESIS_PREV);
        assert_eq!(r2.seq, 2);
        let lines = log_lines(dir.path());
        assert_eq!(r2.prev, sha256_hex(&lines[0]));
        let report = verify(dir.path()).unwrap();
        assert_eq!(report.records, 3);
        assert!(report.notes.is_empty());
        assert_eq!(
            report.last_sha256.as_deref(),
            Some(sha256_hex(&lines[2]).as_str())
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(log_path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let recs = read_records(dir.path()).unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[1].as_ref().unwrap().event, sample(2));
        assert_eq!(
            recs[0].as_ref().unwrap().signer_version,
            env!("CARGO_PKG_VERSION")
        );
    }

    #[test]
    fn edited_line_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        for n in 1..=4 {
            record(dir.path(), &test_time(), sample(n)).unwrap();
        }
        let orig = log_lines(dir.path());
        let edit = |line: &[u8], from: &str, to: &str| {
            String::from_utf8(line.to_vec())
                .unwrap()
                .replace(from, to)
                .into_bytes()
        };

        // A middle line edited: the next line's link breaks.
        let edited = edit(&orig[1], "ci-root-2", "ci-root-X");
        write_lines(dir.path(), &[&orig[0], &edited, &orig[2], &orig[3]]);
        let err = verify(dir.path()).unwrap_err();
        match &err {
            AuditError::Broken { line, reason, .. } => {
                assert_eq!(*line, 3, "{err}");
                assert!(reason.contains("line 2 was edited"), "{reason}");
            }
            other => panic!("{other}"),
        }

        // The last line edited: only the head can tell, and record() refuses to append.
        let edited = edit(&orig[3], "ci-root-4", "ci-root-Y");
        write_lines(dir.path(), &[&orig[0], &orig[1], &orig[2], &edited]);
        let err = verify(dir.path()).unwrap_err();
        assert!(matches!(err, AuditError::HeadMismatch { .. }), "{err}");
        assert!(err.to_string().contains("edited"), "{err}");
        assert!(record(dir.path(), &test_time(), sample(9)).is_err());

        // Restored: verifies again.
        write_lines(dir.path(), &[&orig[0], &orig[1], &orig[2], &orig[3]]);
        assert_eq!(verify(dir.path()).unwrap().records, 4);
    }

    #[test]
    fn deleted_lines_are_detected() {
        let dir = tempfile::tempdir().unwrap();
        for n in 1..=4 {
            record(dir.path(), &test_time(), sample(n)).unwrap();
        }
        let lines = log_lines(dir.path());

        // A middle line removed.
        write_lines(dir.path(), &[&lines[0], &lines[2], &lines[3]]);
        let err = verify(dir.path()).unwrap_err();
        match &err {
            AuditError::Broken { line, reason, .. } => {
                assert_eq!(*line, 2);
                assert!(reason.contains("deleted"), "{reason}");
            }
            other => panic!("{other}"),
        }

        // The first line removed.
        write_lines(dir.path(), &[&lines[1], &lines[2], &lines[3]]);
        assert!(matches!(
            verify(dir.path()).unwrap_err(),
            AuditError::Broken { line: 1, .. }
        ));

        // The last line removed: only the head can tell.
        write_lines(dir.path(), &[&lines[0], &lines[1], &lines[2]]);
        let err = verify(dir.path()).unwrap_err();
        assert!(matches!(err, AuditError::HeadMismatch { .. }), "{err}");
        assert!(err.to_string().contains("deleted"), "{err}");
        // ... and record() refuses to paper over it.
        assert!(matches!(
            record(dir.path(), &test_time(), sample(7)).unwrap_err(),
            AuditError::HeadMismatch { .. }
        ));

        // The whole log removed while the head remains.
        std::fs::remove_file(log_path(dir.path())).unwrap();
        assert!(matches!(
            verify(dir.path()).unwrap_err(),
            AuditError::HeadMismatch { .. }
        ));
    }

    #[test]
    fn torn_last_line_and_interrupted_head_update() {
        let dir = tempfile::tempdir().unwrap();
        record(dir.path(), &test_time(), sample(1)).unwrap();
        let head_after_one = std::fs::read(head_path(dir.path())).unwrap();
        record(dir.path(), &test_time(), sample(2)).unwrap();
        // Simulate a crash after the append but before the head update.
        std::fs::write(head_path(dir.path()), &head_after_one).unwrap();
        let report = verify(dir.path()).unwrap();
        assert_eq!(report.records, 2);
        assert_eq!(report.notes.len(), 1, "{:?}", report.notes);
        record(dir.path(), &test_time(), sample(3)).unwrap();
        assert!(verify(dir.path()).unwrap().notes.is_empty());

        // A torn append (no final newline).
        let mut content = std::fs::read(log_path(dir.path())).unwrap();
        content.extend_from_slice(b"{\"seq\":4,");
        std::fs::write(log_path(dir.path()), content).unwrap();
        let err = verify(dir.path()).unwrap_err();
        assert!(err.to_string().contains("incomplete"), "{err}");
        assert!(record(dir.path(), &test_time(), sample(4)).is_err());
    }

    #[test]
    fn a_run_appends_its_records_at_once_and_an_interrupted_one_is_told() {
        let dir = tempfile::tempdir().unwrap();
        record(dir.path(), &test_time(), sample(1)).unwrap();
        let head_after_one = std::fs::read(head_path(dir.path())).unwrap();
        let later = test_time().plus_days(1);
        let written =
            record_all(dir.path(), &later, vec![sample(2), sample(3), sample(4)]).unwrap();
        assert_eq!(written.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3, 4]);
        let report = verify(dir.path()).unwrap();
        assert_eq!(report.records, 4);
        assert!(report.notes.is_empty(), "{:?}", report.notes);
        assert!(record_all(dir.path(), &later, Vec::new())
            .unwrap()
            .is_empty());
        assert_eq!(verify(dir.path()).unwrap().records, 4);

        // A crash after the append, before the head update: the head names record 1 and the
        // three records after it are one run's (the same time).
        std::fs::write(head_path(dir.path()), &head_after_one).unwrap();
        let report = verify(dir.path()).unwrap();
        assert_eq!(report.notes.len(), 1, "{:?}", report.notes);
        assert!(
            report.notes[0].contains("records 2-4 were written"),
            "{:?}",
            report.notes
        );
        record(dir.path(), &later, sample(5)).unwrap();
        assert!(verify(dir.path()).unwrap().notes.is_empty());

        // Records of two runs after the head are not an interrupted run: refused.
        let dir = tempfile::tempdir().unwrap();
        record(dir.path(), &test_time(), sample(1)).unwrap();
        let head_after_one = std::fs::read(head_path(dir.path())).unwrap();
        record(dir.path(), &test_time(), sample(2)).unwrap();
        record(dir.path(), &later, sample(3)).unwrap();
        std::fs::write(head_path(dir.path()), &head_after_one).unwrap();
        let err = verify(dir.path()).unwrap_err().to_string();
        assert!(err.contains("do not continue from it"), "{err}");
        assert!(record(dir.path(), &later, sample(4)).is_err());
    }

    #[test]
    fn show_and_verify_commands() {
        let dir = tempfile::tempdir().unwrap();
        record(dir.path(), &test_time(), sample(1)).unwrap();
        record(
            dir.path(),
            &test_time(),
            AuditEvent::KeyExported {
                keyid: kid(5),
                form: "paper".into(),
                path: "/media/sheet.txt".into(),
            },
        )
        .unwrap();
        let (r, text) = run_in(dir.path(), |ctx| {
            run(ctx, &AuditCommand::Verify(VerifyArgs::default()))
        });
        r.unwrap();
        assert!(text.contains("2 record(s)"), "{text}");

        let (r, text) = run_in(dir.path(), |ctx| {
            run(ctx, &AuditCommand::Show(ShowArgs::default()))
        });
        r.unwrap();
        assert!(text.contains("PRIVATE KEY EXPORTED (paper)"), "{text}");
        assert!(text.contains("signed ci-root-1"), "{text}");

        let show_last_json = AuditCommand::Show(ShowArgs {
            json: true,
            last: Some(1),
        });
        let (r, text) = run_in(dir.path(), |ctx| run(ctx, &show_last_json));
        r.unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(text.contains("\"key-exported\""), "{text}");

        // A broken log makes both commands fail.
        let lines = log_lines(dir.path());
        write_lines(dir.path(), &[&lines[1]]);
        for cmd in [
            AuditCommand::Verify(VerifyArgs::default()),
            AuditCommand::Show(ShowArgs::default()),
        ] {
            assert!(run_in(dir.path(), |ctx| run(ctx, &cmd)).0.is_err());
        }
    }
}
