//! What kind of file a path holds, told from its first bytes: for the one-line message when
//! a person gives the wrong file (a transfer bundle where a root.json is expected, a keys
//! tarball where a bundle is expected, a root.json as a keys file, …).
//!
//! Nothing here decides whether a file is *valid*: the real readers ([`crate::bundle`],
//! [`crate::tarball`], [`crate::metadata`]) do that, and only when they refuse a file — or
//! before a reader would misread it (a bundle is a valid tar with no keys in it) — does a
//! program ask [`sniff_file`] what the file is instead, to say so. The sniffing reads at
//! most [`HEAD_SIZE`] bytes and inflates at most [`INFLATED_HEAD`] bytes of a gzip stream, so
//! a hostile file costs nothing to look at; it never returns file content, only a kind.
//!
//! | kind | recognised by |
//! |---|---|
//! | [`FileKind::TransferBundle`] | a tar (plain or gzip) whose first member is `manifest.json` (bundle spec §3) |
//! | [`FileKind::KeysTarball`] | a tar whose first member is under `tufrepo/` or is a `.pub`/`.sec` key file (fioctl's layout) |
//! | [`FileKind::Age`] | the age header (`age-encryption.org/`, or its ASCII armour) |
//! | [`FileKind::Root`] | JSON with `signed._type` = `Root` |
//! | [`FileKind::Metadata`] | JSON with another `signed._type` (targets, snapshot, …) |
//! | [`FileKind::PrivateKey`], [`FileKind::PublicKey`] | JSON with `keytype` and `keyval.private` / `keyval.public` (fioctl's `.sec`/`.pub`) |
//! | [`FileKind::TransactionState`] | JSON with `status` and `current` (what the Factory API's `GET root/updates` answers) |
//! | [`FileKind::KeySheet`] | text with a line starting `OTK1 ` (a `signer keys print` or `keys split` sheet) |
//! | [`FileKind::Json`], [`FileKind::Tar`] | any other JSON object, any other tar |

use std::io::Read;
use std::path::Path;

use serde_json::Value;

/// Bytes read from the start of a file to tell its kind.
pub const HEAD_SIZE: u64 = 1024 * 1024;

/// Bytes of a gzip stream inflated to tell its kind (the first tar headers).
pub const INFLATED_HEAD: u64 = 16 * 1024;

/// Size of a tar header block.
const BLOCK: usize = 512;

/// Tar headers looked at before giving up (PAX and GNU long-name headers come first).
const MAX_HEADERS: usize = 4;

/// The kinds of file the programs of this toolkit read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileKind {
    /// A transfer bundle (request or response).
    TransferBundle,
    /// A keys tarball in fioctl's layout (`tufrepo/keys/…`).
    KeysTarball,
    /// An age-encrypted file (a `*.tgz.age` keys file, or anything else encrypted with age).
    Age,
    /// A TUF root document (`root.json`).
    Root,
    /// TUF metadata of another type (the `_type` as written).
    Metadata(String),
    /// A private key file (fioctl `.sec` JSON, or `signer keys export-root` output).
    PrivateKey,
    /// A public key file (fioctl `.pub` JSON).
    PublicKey,
    /// The Factory API's root-updates transaction state (`GET root/updates`).
    TransactionState,
    /// A paper backup or Shamir share sheet (`signer keys print`, `signer keys split`): it
    /// holds a private key or a share of one.
    KeySheet,
    /// Some other JSON object.
    Json,
    /// Some other tar archive (plain or gzip).
    Tar,
}

impl FileKind {
    /// The kind as a phrase for messages ("a transfer bundle", "a root.json", …).
    pub fn describe(&self) -> String {
        match self {
            FileKind::TransferBundle => "a transfer bundle".to_string(),
            FileKind::KeysTarball => "a keys tarball".to_string(),
            FileKind::Age => "an age-encrypted file".to_string(),
            FileKind::Root => "a root.json".to_string(),
            FileKind::Metadata(t) => format!("a TUF {t} metadata file"),
            FileKind::PrivateKey => "a private key file".to_string(),
            FileKind::PublicKey => "a public key file".to_string(),
            FileKind::TransactionState => {
                "a root updates transaction state (what `GET root/updates` answers)".to_string()
            }
            FileKind::KeySheet => {
                "a key backup sheet (`signer keys print` or `keys split`)".to_string()
            }
            FileKind::Json => "a JSON document".to_string(),
            FileKind::Tar => "a tar archive".to_string(),
        }
    }
}

/// The kind of the file whose first bytes are `head` (at most [`HEAD_SIZE`] of them are
/// looked at); `None` when it is none of the kinds above (or empty).
pub fn sniff(head: &[u8]) -> Option<FileKind> {
    let head = &head[..head.len().min(HEAD_SIZE as usize)];
    let trimmed = trim_start(head);
    if head.starts_with(b"age-encryption.org/")
        || trimmed.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
    {
        return Some(FileKind::Age);
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        let mut inflated = Vec::new();
        // A truncated head ends the stream early: what was inflated until then is kept.
        let _ = flate2::read::GzDecoder::new(head)
            .take(INFLATED_HEAD)
            .read_to_end(&mut inflated);
        return first_member(&inflated).map(|name| tar_kind(&name));
    }
    if let Some(name) = first_member(head) {
        return Some(tar_kind(&name));
    }
    if trimmed.starts_with(b"{") || trimmed.starts_with(b"[") {
        return Some(json_kind(head));
    }
    if is_key_sheet(head) {
        return Some(FileKind::KeySheet);
    }
    None
}

/// Text with a line carrying an `OTK1` payload (the QR payload lines of backup sheets).
fn is_key_sheet(head: &[u8]) -> bool {
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        // A head cut inside a character: the valid part is enough.
        Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or(""),
    };
    text.lines().any(|l| l.trim_start().starts_with("OTK1 "))
}

/// [`sniff`] of the first [`HEAD_SIZE`] bytes of the file at `path`; `None` when it cannot
/// be read or is of no known kind.
pub fn sniff_file(path: impl AsRef<Path>) -> Option<FileKind> {
    let mut head = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(HEAD_SIZE)
        .read_to_end(&mut head)
        .ok()?;
    sniff(&head)
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    &bytes[start..]
}

/// The kind of a tar whose first member (after extended headers) is `name`.
fn tar_kind(name: &str) -> FileKind {
    let name = name.trim_start_matches("./");
    if name == "manifest.json" {
        FileKind::TransferBundle
    } else if name.starts_with("tufrepo/") || name.ends_with(".pub") || name.ends_with(".sec") {
        FileKind::KeysTarball
    } else {
        FileKind::Tar
    }
}

/// The name of the first real member of a tar stream (PAX and GNU long-name headers are
/// skipped; a GNU long name is used), if `bytes` starts with a tar header.
fn first_member(bytes: &[u8]) -> Option<String> {
    let mut offset = 0;
    let mut long_name: Option<String> = None;
    for _ in 0..MAX_HEADERS {
        let header = bytes.get(offset..offset + BLOCK)?;
        if !is_tar_header(header) {
            return None;
        }
        let size = octal(&header[124..136])?;
        let data_start = offset + BLOCK;
        match header[156] {
            // PAX extended headers: skip them (the name of the member follows).
            b'x' | b'g' => {}
            // GNU long name: the data is the next member's name.
            b'L' => {
                let len = usize::try_from(size).ok()?;
                let data = bytes.get(data_start..data_start.checked_add(len)?)?;
                long_name = Some(c_string(data));
            }
            _ => {
                if let Some(n) = long_name {
                    return Some(n);
                }
                let name = c_string(&header[..100]);
                let prefix = c_string(&header[345..500]);
                return Some(if prefix.is_empty() || &header[257..262] != b"ustar" {
                    name
                } else {
                    format!("{prefix}/{name}")
                });
            }
        }
        let blocks = usize::try_from(size.div_ceil(BLOCK as u64)).ok()?;
        offset = data_start.checked_add(blocks.checked_mul(BLOCK)?)?;
    }
    None
}

/// Whether `header` (512 bytes) is a tar header: the ustar magic, or a valid checksum.
fn is_tar_header(header: &[u8]) -> bool {
    if &header[257..262] == b"ustar" {
        return true;
    }
    let Some(stored) = octal(&header[148..156]) else {
        return false;
    };
    let sum: u64 = header
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                u64::from(b' ')
            } else {
                u64::from(*b)
            }
        })
        .sum();
    header.iter().any(|b| *b != 0) && stored == sum
}

/// An octal number field of a tar header (NUL/space padded).
fn octal(field: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(field).ok()?;
    let digits = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if digits.is_empty() {
        return None;
    }
    u64::from_str_radix(digits, 8).ok()
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// The kind of a JSON object (a whole document; a truncated one is [`FileKind::Json`]).
fn json_kind(bytes: &[u8]) -> FileKind {
    let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(bytes) else {
        return FileKind::Json;
    };
    if let Some(t) = doc
        .get("signed")
        .and_then(|s| s.get("_type"))
        .and_then(Value::as_str)
    {
        return if t.eq_ignore_ascii_case("root") {
            FileKind::Root
        } else {
            FileKind::Metadata(t.to_string())
        };
    }
    match (doc.get("keytype"), doc.get("keyval")) {
        (Some(_), Some(val)) if val.get("private").is_some() => FileKind::PrivateKey,
        (Some(_), Some(val)) if val.get("public").is_some() => FileKind::PublicKey,
        _ if doc.contains_key("status") && doc.contains_key("current") => {
            FileKind::TransactionState
        }
        _ => FileKind::Json,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{self, Compression, MemberRef};

    fn tar(names: &[&str], compression: Compression) -> Vec<u8> {
        let members: Vec<MemberRef<'_>> = names
            .iter()
            .map(|n| MemberRef {
                name: n,
                data: b"{}",
                mode: 0o600,
            })
            .collect();
        archive::write(&members, compression).unwrap().to_vec()
    }

    #[test]
    fn archives_by_their_first_member() {
        for c in [Compression::None, Compression::Gzip] {
            assert_eq!(
                sniff(&tar(&["manifest.json", "transaction.json"], c)),
                Some(FileKind::TransferBundle)
            );
            assert_eq!(
                sniff(&tar(&["tufrepo/keys/first-root.pub"], c)),
                Some(FileKind::KeysTarball)
            );
            assert_eq!(sniff(&tar(&["notes.txt"], c)), Some(FileKind::Tar));
        }
        // A head cut inside the gzip stream still tells the kind from the first header; a
        // head too short to hold it tells nothing.
        use sha2::{Digest, Sha256};
        let noise: Vec<u8> = (0..6000u32)
            .flat_map(|i| Sha256::digest(i.to_be_bytes()))
            .collect();
        let members = [
            MemberRef {
                name: "manifest.json",
                data: b"{}",
                mode: 0o600,
            },
            MemberRef {
                name: "chain/1.root.json",
                data: &noise,
                mode: 0o600,
            },
        ];
        let gz = archive::write(&members, Compression::Gzip)
            .unwrap()
            .to_vec();
        assert!(gz.len() > 100_000);
        assert_eq!(sniff(&gz[..gz.len() / 2]), Some(FileKind::TransferBundle));
        assert_eq!(sniff(&gz[..12]), None);
        let long = format!("tufrepo/keys/{}.pub", "k".repeat(120));
        let mut builder = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o600);
        builder.append_data(&mut h, &long, &b"{}"[..]).unwrap();
        let gnu = builder.into_inner().unwrap();
        assert_eq!(sniff(&gnu), Some(FileKind::KeysTarball));
    }

    #[test]
    fn json_documents_and_age() {
        let root = br#"{"signatures":[],"signed":{"_type":"Root","version":1}}"#;
        assert_eq!(sniff(root), Some(FileKind::Root));
        let targets = br#" {"signatures":[],"signed":{"_type":"Targets"}}"#;
        assert_eq!(
            sniff(targets),
            Some(FileKind::Metadata("Targets".to_string()))
        );
        let sec = br#"{"keytype":"ED25519","keyval":{"private":"00"}}"#;
        assert_eq!(sniff(sec), Some(FileKind::PrivateKey));
        let public = br#"{"keytype":"ED25519","keyval":{"public":"00"}}"#;
        assert_eq!(sniff(public), Some(FileKind::PublicKey));
        assert_eq!(sniff(br#"{"a": 1"#), Some(FileKind::Json));
        assert_eq!(
            sniff(b"age-encryption.org/v1\n-> scrypt"),
            Some(FileKind::Age)
        );
        assert_eq!(
            sniff(b"\n-----BEGIN AGE ENCRYPTED FILE-----\n"),
            Some(FileKind::Age)
        );
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"hello"), None);
        assert_eq!(sniff(&[0u8; 1024]), None);
        let state = br#"{"status":"STARTED","current":{"ci-root":"{}"},"updated":{}}"#;
        assert_eq!(sniff(state), Some(FileKind::TransactionState));
        let sheet = b"Root key backup of acme\n  QR payload:\n  OTK1 ABCD-EFGH\n";
        assert_eq!(sniff(sheet), Some(FileKind::KeySheet));
        assert_eq!(FileKind::Root.describe(), "a root.json");
    }

    #[test]
    fn files_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.tufbundle");
        std::fs::write(&p, tar(&["manifest.json"], Compression::None)).unwrap();
        assert_eq!(sniff_file(&p), Some(FileKind::TransferBundle));
        assert_eq!(sniff_file(dir.path().join("missing")), None);
    }
}
