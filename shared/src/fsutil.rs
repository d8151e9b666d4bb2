//! Atomic file replacement and bounded file reading.
//!
//! Every file this toolkit writes that matters (keys tarballs, transfer bundles, trust pins)
//! goes through [`write_atomic`] or one of its variants. The recipe:
//!
//! 1. create a new temporary file **in the same directory** as the target, named
//!    `.<target name>.<16 hex chars>.tmp`, with `O_CREAT|O_EXCL` and the requested mode
//!    (on unix the mode is set with `fchmod` right after creation, before a single byte
//!    of content is written, so a secret is never readable by others and the umask does
//!    not matter);
//! 2. write the content and `fsync` the file;
//! 3. `rename` it over the target (atomic on POSIX file systems: readers see either the
//!    old or the new file, never a mix, and the old file is **never truncated in place**);
//! 4. `fsync` the directory so that the rename itself survives a power cut.
//!
//! If anything fails before the rename, the temporary file is removed and the target is
//! untouched. If the process dies between steps 1 and 3 (power cut, `kill -9`), the
//! temporary file stays behind: [`leftover_temp_files`] finds such files so that a caller
//! can explain them to the user ("a previous run was interrupted; `X` may hold a new
//! private key — move it somewhere safe").
//!
//! # Crash injection (test builds only)
//!
//! Crash tests name the places where a process may die: [`crash_point`] marks one, and this
//! module marks [`CRASH_AFTER_WRITE`] (`fsutil:after-write-before-rename`: temp file complete
//! and synced, target untouched) and [`CRASH_AFTER_RENAME`]
//! (`fsutil:after-rename-before-dirsync`); other modules and the binaries mark their own.
//!
//! Only a build with this crate's cargo feature `test-hooks` (or this crate's own unit tests)
//! acts on them: there [`crash_point`] aborts the process when the environment variable
//! `CRASH_ENV` (`OFFLINE_TUF_CRASH_AT`) equals the point's name. The feature is off by
//! default and only the `tests` crate turns it on, as a dev-dependency, so the crash suites
//! run in `cargo test --workspace` (cargo unifies the features of a test build, so the
//! `signer` binary that build makes has the hook) while `cargo build`/`cargo install` of the
//! courier or the signer make binaries without it: there [`crash_point`] is empty, and
//! neither the variable's name nor the abort is in the binary. To check a binary:
//! `strings target/release/signer | grep -c OFFLINE_TUF_CRASH_AT` prints 0;
//! `cargo tree -p signer -e features -i shared` lists no `test-hooks` (a test checks it).

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Environment variable naming the crash point at which [`crash_point`] aborts the process
/// (builds with the `test-hooks` feature only).
#[cfg(any(test, feature = "test-hooks"))]
pub const CRASH_ENV: &str = "OFFLINE_TUF_CRASH_AT";

/// Crash point reached when the temporary file is written and synced, before the rename.
pub const CRASH_AFTER_WRITE: &str = "fsutil:after-write-before-rename";

/// Crash point reached right after the rename, before the directory is synced.
pub const CRASH_AFTER_RENAME: &str = "fsutil:after-rename-before-dirsync";

/// Suffix of every temporary file created by this module.
const TEMP_SUFFIX: &str = ".tmp";

/// Number of random hex characters in a temporary file name.
const TEMP_RANDOM_LEN: usize = 16;

/// What to do when the target of an atomic write already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfExists {
    /// Replace the existing file (atomically).
    Replace,
    /// Refuse with [`FsError::AlreadyExists`]; the existing file is left untouched.
    Refuse,
}

/// Errors of the file helpers. Every variant names the file it is about.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// The path has no file name component (e.g. `/` or `..`).
    #[error("{path}: not a file path (no file name)")]
    NotAFilePath {
        /// The offending path.
        path: PathBuf,
    },
    /// The temporary file could not be created next to the target.
    #[error("cannot create a temporary file in {dir} (is the directory writable?): {source}")]
    CreateTemp {
        /// Directory of the target.
        dir: PathBuf,
        /// Underlying error.
        source: io::Error,
    },
    /// Writing or syncing the temporary file failed; the target is untouched.
    #[error("cannot write {path} (writing temporary file {temp} failed, the original is untouched): {source}")]
    Write {
        /// The target.
        path: PathBuf,
        /// The temporary file (already removed again when possible).
        temp: PathBuf,
        /// Underlying error.
        source: io::Error,
    },
    /// Renaming the temporary file over the target failed; the target is untouched.
    #[error("cannot replace {path} with {temp}: {source}")]
    Rename {
        /// The target.
        path: PathBuf,
        /// The complete temporary file.
        temp: PathBuf,
        /// Underlying error.
        source: io::Error,
    },
    /// The target exists and the caller asked not to replace it.
    #[error("{path} already exists; refusing to overwrite it (move it away first if it is no longer needed)")]
    AlreadyExists {
        /// The target.
        path: PathBuf,
    },
    /// The file was replaced but the directory could not be synced, so the change may not
    /// survive a power cut.
    #[error("{path} was written but syncing its directory {dir} failed (the change may not survive a power cut): {source}")]
    SyncDir {
        /// The target.
        path: PathBuf,
        /// Its directory.
        dir: PathBuf,
        /// Underlying error.
        source: io::Error,
    },
    /// Reading a file failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Underlying error.
        source: io::Error,
    },
    /// A file is larger than the caller's limit.
    #[error("{path} is larger than {limit} bytes; refusing to read it")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// Listing a directory failed.
    #[error("cannot list directory {dir}: {source}")]
    ListDir {
        /// The directory.
        dir: PathBuf,
        /// Underlying error.
        source: io::Error,
    },
}

/// Marks a place where crash tests make the process die: with the `test-hooks` feature,
/// aborts the process if the environment variable `CRASH_ENV` equals `point`; without it
/// (every shipped build), does nothing.
///
/// `abort` skips destructors and buffered output, which is the closest a test can get to a
/// power cut.
#[inline]
pub fn crash_point(point: &str) {
    #[cfg(any(test, feature = "test-hooks"))]
    if std::env::var_os(CRASH_ENV).is_some_and(|value| value == point) {
        eprintln!("{CRASH_ENV}={point}: aborting on purpose (crash injection)");
        std::process::abort();
    }
    #[cfg(not(any(test, feature = "test-hooks")))]
    let _ = point;
}

/// Atomically replaces (or creates) `path` with `bytes`, with unix permission bits `mode`
/// (e.g. `0o600` for secrets; ignored on other platforms).
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8], mode: u32) -> Result<(), FsError> {
    write_atomic_with(path, mode, IfExists::Replace, |f| f.write_all(bytes))
}

/// Like [`write_atomic`], but refuses with [`FsError::AlreadyExists`] when `path` exists.
///
/// On file systems with hard links the check and the creation are one atomic step
/// (`link` fails if the target exists); elsewhere (e.g. FAT) it falls back to a check
/// followed by a rename.
pub fn write_atomic_new(path: impl AsRef<Path>, bytes: &[u8], mode: u32) -> Result<(), FsError> {
    write_atomic_with(path, mode, IfExists::Refuse, |f| f.write_all(bytes))
}

/// The general (streaming) form: `write` fills the temporary file, then it is synced and
/// moved over `path` as described in the module documentation.
///
/// If `write` fails the temporary file is removed and its error is returned as
/// [`FsError::Write`].
pub fn write_atomic_with<F>(
    path: impl AsRef<Path>,
    mode: u32,
    if_exists: IfExists,
    write: F,
) -> Result<(), FsError>
where
    F: FnOnce(&mut File) -> io::Result<()>,
{
    let path = path.as_ref();
    let (dir, name) = split(path)?;
    if if_exists == IfExists::Refuse && fs::symlink_metadata(path).is_ok() {
        return Err(FsError::AlreadyExists {
            path: path.to_path_buf(),
        });
    }
    let (mut file, temp) = create_temp(&dir, &name, mode)?;
    let written = write(&mut file)
        .and_then(|()| file.flush())
        .and_then(|()| file.sync_all());
    drop(file);
    if let Err(source) = written {
        let _ = fs::remove_file(&temp);
        return Err(FsError::Write {
            path: path.to_path_buf(),
            temp,
            source,
        });
    }
    crash_point(CRASH_AFTER_WRITE);
    match if_exists {
        IfExists::Replace => {
            if let Err(source) = fs::rename(&temp, path) {
                let _ = fs::remove_file(&temp);
                return Err(FsError::Rename {
                    path: path.to_path_buf(),
                    temp,
                    source,
                });
            }
        }
        IfExists::Refuse => place_new(path, &temp)?,
    }
    crash_point(CRASH_AFTER_RENAME);
    sync_dir(&dir).map_err(|source| FsError::SyncDir {
        path: path.to_path_buf(),
        dir,
        source,
    })
}

/// Moves `temp` to `path` only if `path` does not exist.
fn place_new(path: &Path, temp: &Path) -> Result<(), FsError> {
    match fs::hard_link(temp, path) {
        Ok(()) => {
            let _ = fs::remove_file(temp);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let _ = fs::remove_file(temp);
            Err(FsError::AlreadyExists {
                path: path.to_path_buf(),
            })
        }
        Err(_) => {
            // No hard links here (FAT, some network file systems): check, then rename.
            if fs::symlink_metadata(path).is_ok() {
                let _ = fs::remove_file(temp);
                return Err(FsError::AlreadyExists {
                    path: path.to_path_buf(),
                });
            }
            fs::rename(temp, path).map_err(|source| {
                let _ = fs::remove_file(temp);
                FsError::Rename {
                    path: path.to_path_buf(),
                    temp: temp.to_path_buf(),
                    source,
                }
            })
        }
    }
}

/// Checks, before anything else is changed, that an atomic write of `path` can start: a
/// temporary file is created next to it and removed again. Callers that write several files
/// in a row (keys, then a response) probe the later ones first, so that a read-only or
/// missing directory fails before the first write instead of between two of them.
pub fn probe_writable(path: impl AsRef<Path>) -> Result<(), FsError> {
    let (dir, name) = split(path.as_ref())?;
    let (file, temp) = create_temp(&dir, &name, 0o600)?;
    drop(file);
    fs::remove_file(&temp).map_err(|source| FsError::CreateTemp { dir, source })
}

/// Removes the file `path` and syncs its directory, so that the removal survives a crash
/// (file systems that cannot sync a directory, e.g. FAT, are accepted as in
/// [`write_atomic`]).
pub fn remove_durably(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    fs::remove_file(path)?;
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => sync_dir(d),
        _ => sync_dir(Path::new(".")),
    }
}

/// Returns the temporary files that an interrupted atomic write of `path` left behind
/// (names `.<file name>.<16 hex>.tmp` in the same directory), sorted by name.
///
/// A missing directory yields an empty list.
pub fn leftover_temp_files(path: impl AsRef<Path>) -> Result<Vec<PathBuf>, FsError> {
    let path = path.as_ref();
    let (dir, name) = split(path)?;
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(FsError::ListDir { dir, source }),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| FsError::ListDir {
            dir: dir.clone(),
            source,
        })?;
        if is_temp_name_for(&entry.file_name(), &name) {
            found.push(entry.path());
        }
    }
    found.sort();
    Ok(found)
}

/// Reads a whole file, refusing files larger than `limit` bytes (without reading them).
pub fn read_limited(path: impl AsRef<Path>, limit: u64) -> Result<Vec<u8>, FsError> {
    let path = path.as_ref();
    let read_err = |source| FsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(read_err)?;
    let len = file.metadata().map_err(read_err)?.len();
    if len > limit {
        return Err(FsError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    // `take` guards against a file that grows while it is read.
    file.take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(read_err)?;
    if out.len() as u64 > limit {
        return Err(FsError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(out)
}

/// Splits `path` into (directory, file name); a bare name lives in `.`.
fn split(path: &Path) -> Result<(PathBuf, OsString), FsError> {
    let name = path.file_name().ok_or_else(|| FsError::NotAFilePath {
        path: path.to_path_buf(),
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name.to_os_string()))
}

/// The temporary file name for `name` with the given random part.
fn temp_name(name: &OsString, random: &str) -> OsString {
    let mut t = OsString::from(".");
    t.push(name);
    t.push(".");
    t.push(random);
    t.push(TEMP_SUFFIX);
    t
}

/// Whether `candidate` is a temporary file name created by this module for `name`.
fn is_temp_name_for(candidate: &std::ffi::OsStr, name: &OsString) -> bool {
    let (Some(candidate), Some(name)) = (candidate.to_str(), name.to_str()) else {
        // Non-UTF-8 names: compare bytes through the lossy form (good enough for a hint).
        let c = candidate.to_string_lossy();
        let n = name.to_string_lossy();
        return matches_temp(&c, &n);
    };
    matches_temp(candidate, name)
}

fn matches_temp(candidate: &str, name: &str) -> bool {
    let Some(rest) = candidate
        .strip_prefix('.')
        .and_then(|r| r.strip_prefix(name))
        .and_then(|r| r.strip_prefix('.'))
        .and_then(|r| r.strip_suffix(TEMP_SUFFIX))
    else {
        return false;
    };
    rest.len() == TEMP_RANDOM_LEN && rest.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Creates a fresh temporary file for `name` in `dir` with permission bits `mode`.
fn create_temp(dir: &Path, name: &OsString, mode: u32) -> Result<(File, PathBuf), FsError> {
    let mut last_err = None;
    for _ in 0..16 {
        let random = hex::encode(rand::random::<[u8; TEMP_RANDOM_LEN / 2]>());
        let temp = dir.join(temp_name(name, &random));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode & 0o7777);
        }
        match options.open(&temp) {
            Ok(file) => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    // Exact bits, independent of the umask.
                    if let Err(source) =
                        file.set_permissions(fs::Permissions::from_mode(mode & 0o7777))
                    {
                        drop(file);
                        let _ = fs::remove_file(&temp);
                        return Err(FsError::CreateTemp {
                            dir: dir.to_path_buf(),
                            source,
                        });
                    }
                }
                #[cfg(not(unix))]
                let _ = mode;
                return Ok((file, temp));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(source) => {
                return Err(FsError::CreateTemp {
                    dir: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
    Err(FsError::CreateTemp {
        dir: dir.to_path_buf(),
        source: last_err.unwrap_or_else(|| io::Error::other("no unique temporary name found")),
    })
}

/// Makes a completed rename in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        match File::open(dir).and_then(|d| d.sync_all()) {
            Ok(()) => Ok(()),
            // Some file systems cannot sync a directory; the rename is done regardless.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::metadata(path)
                .map(|m| m.permissions().mode() & 0o7777)
                .unwrap()
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            0o600
        }
    }

    #[test]
    fn creates_and_replaces_with_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keys.tgz");
        write_atomic(&p, b"one", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"one");
        assert_eq!(mode_of(&p), 0o600);
        write_atomic(&p, b"two", 0o644).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(mode_of(&p), 0o644);
        assert!(leftover_temp_files(&p).unwrap().is_empty());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn replace_does_not_touch_old_inode() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        write_atomic(&p, b"old content", 0o600).unwrap();
        // A second name for the old file: it must keep the old bytes (no truncation in place).
        let keep = dir.path().join("old-link");
        fs::hard_link(&p, &keep).unwrap();
        let ino = fs::metadata(&p).unwrap().ino();
        write_atomic(&p, b"new", 0o600).unwrap();
        assert_ne!(fs::metadata(&p).unwrap().ino(), ino);
        assert_eq!(fs::read(&keep).unwrap(), b"old content");
    }

    #[test]
    fn streaming_failure_leaves_target_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bundle");
        write_atomic(&p, b"keep me", 0o600).unwrap();
        let err = write_atomic_with(&p, 0o600, IfExists::Replace, |f| {
            f.write_all(b"partial")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("bundle") && msg.contains("disk full"), "{msg}");
        assert!(matches!(err, FsError::Write { .. }));
        assert_eq!(fs::read(&p).unwrap(), b"keep me");
        assert!(leftover_temp_files(&p).unwrap().is_empty());
    }

    #[test]
    fn refuse_existing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("root.keys.tgz");
        write_atomic_new(&p, b"first", 0o600).unwrap();
        let err = write_atomic_new(&p, b"second", 0o600).unwrap_err();
        assert!(matches!(err, FsError::AlreadyExists { .. }), "{err}");
        assert!(err.to_string().contains("root.keys.tgz"));
        assert_eq!(fs::read(&p).unwrap(), b"first");
        assert!(leftover_temp_files(&p).unwrap().is_empty());
    }

    #[test]
    fn place_new_loses_race_cleanly() {
        // The target appears between the early check and the final placement.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        let p2 = p.clone();
        let err = write_atomic_with(&p, 0o600, IfExists::Refuse, move |f| {
            fs::write(&p2, b"racer")?;
            f.write_all(b"mine")
        })
        .unwrap_err();
        assert!(matches!(err, FsError::AlreadyExists { .. }));
        assert_eq!(fs::read(&p).unwrap(), b"racer");
        assert!(leftover_temp_files(&p).unwrap().is_empty());
    }

    #[test]
    fn leftover_detection() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("root.keys.tgz");
        let t1 = dir.path().join(".root.keys.tgz.0123456789abcdef.tmp");
        let t2 = dir.path().join(".root.keys.tgz.fedcba9876543210.tmp");
        fs::write(&t2, b"x").unwrap();
        fs::write(&t1, b"x").unwrap();
        // Not ours: wrong shape or another file's temp.
        fs::write(dir.path().join(".root.keys.tgz.xyz.tmp"), b"x").unwrap();
        fs::write(dir.path().join(".other.0123456789abcdef.tmp"), b"x").unwrap();
        fs::write(dir.path().join("root.keys.tgz.tmp"), b"x").unwrap();
        assert_eq!(leftover_temp_files(&p).unwrap(), vec![t1, t2]);
        assert!(leftover_temp_files(dir.path().join("missing/dir/f"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn bare_name_and_bad_paths() {
        assert!(matches!(
            write_atomic("/", b"x", 0o600),
            Err(FsError::NotAFilePath { .. })
        ));
        let (dir, name) = split(Path::new("file")).unwrap();
        assert_eq!(dir, PathBuf::from("."));
        assert_eq!(name, OsString::from("file"));
    }

    #[test]
    fn missing_directory_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nope").join("f");
        let err = write_atomic(&p, b"x", 0o600).unwrap_err();
        assert!(matches!(err, FsError::CreateTemp { .. }));
        assert!(err.to_string().contains("nope"));
    }

    #[test]
    fn read_limited_enforces_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        fs::write(&p, vec![7u8; 100]).unwrap();
        assert_eq!(read_limited(&p, 100).unwrap().len(), 100);
        let err = read_limited(&p, 99).unwrap_err();
        assert!(matches!(err, FsError::TooLarge { limit: 99, .. }));
        assert!(matches!(
            read_limited(dir.path().join("missing"), 10),
            Err(FsError::Read { .. })
        ));
    }

    /// Child half of [`crash_injection_leaves_target_and_temp`]; only does anything when
    /// started by it.
    #[test]
    #[ignore = "helper run in a child process by crash_injection_leaves_target_and_temp"]
    fn crash_child() {
        if let Some(target) = std::env::var_os("FSUTIL_CRASH_TARGET") {
            write_atomic(PathBuf::from(target), b"new secret", 0o600).unwrap();
        }
    }

    #[test]
    fn crash_injection_leaves_target_and_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("root.keys.tgz");
        write_atomic(&p, b"old", 0o600).unwrap();
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "fsutil::tests::crash_child",
                "--ignored",
                "--nocapture",
            ])
            .env(CRASH_ENV, CRASH_AFTER_WRITE)
            .env("FSUTIL_CRASH_TARGET", &p)
            .stderr(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(!status.success(), "child should have aborted");
        assert_eq!(fs::read(&p).unwrap(), b"old");
        let left = leftover_temp_files(&p).unwrap();
        assert_eq!(left.len(), 1, "{left:?}");
        assert_eq!(fs::read(&left[0]).unwrap(), b"new secret");
        assert_eq!(mode_of(&left[0]), 0o600);
    }

    #[test]
    fn crash_point_is_inert_for_other_names() {
        // The variable is not set to this name in tests, so nothing happens.
        crash_point("fsutil:test-never-set");
    }
    #[test]
    fn probe_writable_leaves_nothing_and_names_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        probe_writable(&target).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        let missing = dir.path().join("no-such-dir").join("out.bin");
        let err = probe_writable(&missing).unwrap_err().to_string();
        assert!(
            err.contains("no-such-dir") && err.contains("writable"),
            "{err}"
        );
    }
}
