//! CI targets storage: one line per build in `ci-targets.jsonl` (`<version>\t<json>\n`, the JSON
//! being the canonical map target name → target meta of that build), plus an index of byte
//! offsets in `ci-targets.idx.json`. Written once, streamed, by `init`; read one build at a
//! time by `GET targets/?version=N`, so even hundreds of MB of targets are never loaded whole.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::fsutil::{self, IfExists};

use super::error::SimError;
use super::store;

/// File names inside a factory directory.
const DATA: &str = "ci-targets.jsonl";
const INDEX: &str = "ci-targets.idx.json";

/// Byte range of one build's JSON inside the data file.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Span {
    pub offset: u64,
    pub len: u64,
}

/// The index: build version → span.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct CiIndex {
    pub builds: BTreeMap<u64, Span>,
}

/// Summary of a written CI targets file.
#[derive(Clone, Debug)]
pub(crate) struct CiWritten {
    pub builds: u64,
    pub length: u64,
    pub sha256: String,
}

/// Streams builds into `dir/ci-targets.jsonl` (atomically) and writes the index.
/// `build(v)` returns the canonical JSON of build `v`'s targets map.
pub(crate) fn write<F>(
    dir: &Path,
    versions: impl Iterator<Item = u64>,
    mut build: F,
) -> Result<CiWritten, SimError>
where
    F: FnMut(u64) -> Result<Vec<u8>, SimError>,
{
    let mut index = CiIndex::default();
    let mut hasher = Sha256::new();
    let mut pos = 0u64;
    let mut failure: Option<SimError> = None;
    fsutil::write_atomic_with(
        dir.join(DATA),
        store::STATE_FILE_MODE,
        IfExists::Replace,
        |file| {
            let mut w = BufWriter::with_capacity(1 << 20, file);
            for v in versions {
                let json = match build(v) {
                    Ok(j) => j,
                    Err(e) => {
                        failure = Some(e);
                        return Err(std::io::Error::other("build generation failed"));
                    }
                };
                let head = format!("{v}\t");
                for chunk in [head.as_bytes(), &json, b"\n"] {
                    w.write_all(chunk)?;
                    hasher.update(chunk);
                }
                index.builds.insert(
                    v,
                    Span {
                        offset: pos + head.len() as u64,
                        len: json.len() as u64,
                    },
                );
                pos += (head.len() + json.len() + 1) as u64;
            }
            w.flush()
        },
    )
    .map_err(|e| failure.take().unwrap_or_else(|| e.into()))?;
    let idx = serde_json::to_vec(&index).map_err(|e| SimError::Invalid(e.to_string()))?;
    fsutil::write_atomic(dir.join(INDEX), &idx, store::STATE_FILE_MODE)?;
    Ok(CiWritten {
        builds: index.builds.len() as u64,
        length: pos,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// Reads the index of `dir`.
pub(crate) fn read_index(dir: &Path) -> Result<CiIndex, SimError> {
    let path = dir.join(INDEX);
    let bytes =
        std::fs::read(&path).map_err(|e| SimError::io(format!("reading {}", path.display()), e))?;
    serde_json::from_slice(&bytes).map_err(|e| SimError::Corrupt {
        path,
        reason: e.to_string(),
    })
}

/// The data file of `dir`.
pub(crate) fn data_path(dir: &Path) -> PathBuf {
    dir.join(DATA)
}

/// Reads the targets map JSON of one build.
pub(crate) fn read_build(dir: &Path, span: Span) -> Result<Vec<u8>, SimError> {
    let path = data_path(dir);
    let ctx = || format!("reading {}", path.display());
    let mut f = File::open(&path).map_err(|e| SimError::io(ctx(), e))?;
    f.seek(SeekFrom::Start(span.offset))
        .map_err(|e| SimError::io(ctx(), e))?;
    let mut buf = vec![0u8; span.len as usize];
    f.read_exact(&mut buf).map_err(|e| SimError::io(ctx(), e))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_round_trip_through_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let w = write(dir.path(), 1..=3, |v| {
            Ok(format!("{{\"t-{v}\":{{}}}}").into_bytes())
        })
        .unwrap();
        assert_eq!(w.builds, 3);
        let idx = read_index(dir.path()).unwrap();
        assert_eq!(
            read_build(dir.path(), idx.builds[&2]).unwrap(),
            b"{\"t-2\":{}}"
        );
        let all = std::fs::read(data_path(dir.path())).unwrap();
        assert_eq!(store::sha256_hex(&all), w.sha256);
    }
}
