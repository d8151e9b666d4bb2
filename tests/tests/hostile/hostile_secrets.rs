//! Secret hygiene (issue 10, part 6): after a full workflow — first-time root rotation,
//! targets key rotation on a second laptop, a wave, a verified backup, an explicit export,
//! a paper sheet, the root tarball encrypted at rest and decrypted again — no private key of
//! the keys involved appears anywhere it should not:
//! not in any other file under the world's directory (bundles included, gzip layers opened),
//! not in anything either program printed. Only the keys tarballs (and their backup copies
//! and the copy decrypted on purpose), the explicit export file and the paper sheet may hold
//! them (the encrypted `.tgz.age` holds none in the clear); those, and the signer's age
//! identity, are mode 0600. The signers' signing identities (the keys that sign response
//! steps) are secrets too: each only in its own `signing-identity.txt`, mode 0600, like the
//! pinned cosigners and the signer memory files.
//!
//! The simulator's own state directory is the server side (it holds the factory's online
//! keys and, before the first rotation, the initial root key) and is not scanned.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use shared::keys::{KeyId, PrivateKey};
use shared::tarball::KeysTarball;
use tests::harness::{path_str, World, WorldOptions};

/// One private key and every encoding of it we look for.
struct Secret {
    label: String,
    needles: Vec<(String, Vec<u8>)>,
}

/// PKCS#8 v1 DER prefix of an Ed25519 private key (RFC 8410); the 32-byte seed follows.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// The base64 text that encodes `data` wherever it sits in a longer base64 stream: for each
/// of the three alignments, the groups that only depend on `data`'s bytes.
fn base64_needles(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for engine in [
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        for k in 0..3usize {
            let mut buf = vec![0u8; k];
            buf.extend_from_slice(data);
            let s = engine.encode(&buf);
            let start = if k == 0 { 0 } else { 4 };
            let end = 4 * ((k + data.len()) / 3);
            out.push(s.as_bytes()[start..end].to_vec());
        }
    }
    out
}

impl Secret {
    fn new(label: &str, key: &PrivateKey) -> Secret {
        let json = key.to_json();
        let v: serde_json::Value = serde_json::from_slice(&json).expect("sec json");
        let private = v["keyval"]["private"]
            .as_str()
            .expect("private")
            .to_string();
        assert_eq!(v["keytype"], "ED25519", "the test keys are Ed25519");
        let all = hex::decode(&private).expect("hex private");
        let seed = all[..32].to_vec();
        let public = hex::decode(key.public_key().public()).expect("hex public");
        let mut seed_pub = seed.clone();
        seed_pub.extend_from_slice(&public);
        let mut pkcs8 = PKCS8_ED25519_PREFIX.to_vec();
        pkcs8.extend_from_slice(&seed);

        let mut needles = vec![
            ("raw seed".to_string(), seed.clone()),
            ("hex seed".into(), hex::encode(&seed).into_bytes()),
            ("HEX seed".into(), hex::encode_upper(&seed).into_bytes()),
            (
                "hex first half of the seed".into(),
                hex::encode(&seed[..16]).into_bytes(),
            ),
            (
                "hex second half of the seed".into(),
                hex::encode(&seed[16..]).into_bytes(),
            ),
        ];
        for (what, data) in [
            ("seed", &seed),
            ("seed||pub", &seed_pub),
            ("PKCS#8 DER", &pkcs8),
        ] {
            for n in base64_needles(data) {
                needles.push((format!("base64 of the {what}"), n));
            }
        }
        Secret {
            label: format!("{label} {}", key.keyid()),
            needles,
        }
    }

    /// Which encoding of this secret `hay` contains, if any.
    fn found_in(&self, hay: &[u8]) -> Option<&str> {
        self.needles
            .iter()
            .find(|(_, n)| hay.windows(n.len()).any(|w| w == n.as_slice()))
            .map(|(what, _)| what.as_str())
    }
}

/// Every private key in a plain keys tarball.
fn tarball_secrets(path: &Path, label: &str) -> Vec<(KeyId, PrivateKey)> {
    let t = KeysTarball::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    for k in t.keys().expect("keys") {
        if k.sec_file.is_some() {
            let found = t
                .private_key(&k.keyid)
                .expect("private key")
                .unwrap_or_else(|| panic!("{label}: no private key for {}", k.keyid));
            out.push((k.keyid.clone(), found.key));
        }
    }
    out
}

/// Every regular file under `dir`, except under `skip`.
fn walk(dir: &Path, skip: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let e = e.expect("entry");
        let p = e.path();
        if p == skip {
            continue;
        }
        let ft = e.file_type().expect("file type");
        if ft.is_dir() {
            walk(&p, skip, out);
        } else if ft.is_file() {
            out.push(p);
        }
    }
}

/// The bytes to scan for a file: the file, and its decompressed content if it is gzip.
fn layers(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![bytes.to_vec()];
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut plain = Vec::new();
        if flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut plain)
            .is_ok()
        {
            out.push(plain);
        }
    }
    out
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

#[test]
fn no_private_key_leaks_anywhere() {
    let w = World::new(WorldOptions::default());
    let initial = w
        .view()
        .server_key(&w.init.root_keyid)
        .expect("the server holds the initial root key before the first rotation");

    // 1. First-time root rotation (identity, trust, inspect, rotate, push --apply).
    let root_keys = w.offline.path("root.keys.tgz");
    let targets_keys = w.offline2.path("targets.keys.tgz");
    w.first_time_rotation(&w.offline, &root_keys);

    // 2. Targets rotation on a second laptop, roots signed by the root holder.
    let root_json = w.usb("offline-root.json");
    let (req, half, resp) = (
        w.usb("targets.req.tufbundle"),
        w.usb("targets.step1.tufbundle"),
        w.usb("targets.resp.tufbundle"),
    );
    w.courier([
        "rotate-offline-key",
        "--role",
        "targets",
        "--bundle",
        path_str(&req),
    ])
    .ok();
    w.signer(
        &w.offline2,
        ["--yes", "trust", "init", path_str(&root_json)],
    )
    .ok();
    w.pin_cosigners();
    w.rotate_targets_half(&w.offline2, &targets_keys, &req, &half);
    w.signer(
        &w.offline,
        [
            "--yes",
            "sign",
            "--keys",
            path_str(&root_keys),
            path_str(&half),
            "-o",
            path_str(&resp),
        ],
    )
    .ok();
    w.courier(["updates", "push", path_str(&resp), "--apply"])
        .ok();

    // 3. A wave (the factory's first production tag).
    let (wreq, wresp) = (w.usb("wave.req.tufbundle"), w.usb("wave.resp.tufbundle"));
    let version = w.init.builds.to_string();
    let tag = "production".to_string();
    w.courier([
        "waves",
        "init",
        "wave-1",
        &version,
        &tag,
        "--bundle",
        path_str(&wreq),
    ])
    .ok();
    w.signer(
        &w.offline2,
        [
            "--yes",
            "sign-wave",
            "wave-1",
            "--targets-keys",
            path_str(&targets_keys),
            path_str(&wreq),
            "-o",
            path_str(&wresp),
        ],
    )
    .ok();
    w.courier(["waves", "push", path_str(&wresp)]).ok();

    // 4. Backups: verified copy, explicit export, paper sheet; and listings.
    let backup_dir = w.root.join("backup-media");
    std::fs::create_dir_all(&backup_dir).expect("backup dir");
    let export = w.root.join("export-media").join("root.sec");
    std::fs::create_dir_all(export.parent().expect("parent")).expect("export dir");
    let sheet = w.root.join("paper").join("root-sheet.txt");
    std::fs::create_dir_all(sheet.parent().expect("parent")).expect("sheet dir");
    w.signer(
        &w.offline,
        [
            "keys",
            "backup",
            "--keys",
            path_str(&root_keys),
            "--to",
            path_str(&backup_dir),
        ],
    )
    .ok();
    // Without the explicit flag nothing is exported.
    w.signer(
        &w.offline,
        [
            "keys",
            "export-root",
            "--keys",
            path_str(&root_keys),
            "--out",
            path_str(&export),
        ],
    )
    .fails();
    assert!(!export.exists(), "export without the flag wrote a file");
    w.signer(
        &w.offline,
        [
            "keys",
            "export-root",
            "--keys",
            path_str(&root_keys),
            "--out",
            path_str(&export),
            "--i-understand-this-exports-a-private-key",
        ],
    )
    .ok();
    w.signer(
        &w.offline,
        [
            "keys",
            "print",
            "--keys",
            path_str(&root_keys),
            "--out",
            path_str(&sheet),
        ],
    )
    .ok();
    // Keys at rest: the root tarball encrypted, and decrypted again (a plain copy on purpose).
    let pass = w.offline.path("passphrase.txt");
    std::fs::write(&pass, "correct horse\n").expect("passphrase file");
    let encrypted = w.root.join("at-rest").join("root.keys.tgz.age");
    let decrypted = w.root.join("at-rest").join("decrypted.keys.tgz");
    std::fs::create_dir_all(encrypted.parent().expect("parent")).expect("at-rest dir");
    for (verb, from, to) in [
        ("encrypt", &root_keys, &encrypted),
        ("decrypt", &encrypted, &decrypted),
    ] {
        let extra = ["--passphrase-file", path_str(&pass), "--out", path_str(to)];
        w.signer_keys(&w.offline, verb, from, &extra).ok();
    }
    for (m, t) in [(&w.offline, &root_keys), (&w.offline2, &targets_keys)] {
        w.signer(m, ["keys", "list", "--keys", path_str(t)]).ok();
    }
    w.signer(&w.offline, ["audit", "show"]).ok();
    w.signer(&w.offline, ["audit", "verify"]).ok();
    w.courier(["updates", "status"]);
    w.device_check();

    // The keys involved: the initial root key (from the server), every key in both tarballs.
    let mut secrets = vec![Secret::new("initial root key", &initial)];
    let mut ids = vec![initial.keyid().clone()];
    for (t, label) in [
        (&root_keys, "root tarball key"),
        (&targets_keys, "targets tarball key"),
    ] {
        for (id, k) in tarball_secrets(t, label) {
            if !ids.contains(&id) {
                secrets.push(Secret::new(label, &k));
                ids.push(id);
            }
        }
    }
    assert!(
        secrets.len() >= 3,
        "initial, offline root and offline targets keys: {}",
        secrets.len()
    );
    // The signing identities of both laptops.
    let signing_files: Vec<PathBuf> = [&w.offline, &w.offline2]
        .iter()
        .map(|m| m.signer_home().join("signing-identity.txt"))
        .collect();
    for f in &signing_files {
        let text = std::fs::read_to_string(f).expect("signing identity");
        let seed = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("OFFLINE-TUF-SIGNING-KEY-1"))
            .expect("secret line");
        let mut raw = [0u8; 32];
        hex::decode_to_slice(seed, &mut raw).expect("hex seed");
        secrets.push(Secret::new(
            &format!("signing identity {}", f.display()),
            &PrivateKey::ed25519_from_seed(&raw),
        ));
    }

    // Where secrets may be: the tarballs and their backup copies, the export, the sheet.
    let mut files = Vec::new();
    let server_dir = w.root.join("factory-sim-state");
    walk(&w.root, &server_dir, &mut files);
    let allowed = |p: &Path, secret: &str| {
        if secret.starts_with("signing identity ") {
            return secret.starts_with(&format!("signing identity {} ", p.display()));
        }
        p == root_keys
            || p == targets_keys
            || p == decrypted
            || p == export
            || p == sheet
            || p.starts_with(&backup_dir)
    };
    let mut scanned = 0usize;
    let mut bytes_scanned = 0usize;
    let mut leaks = Vec::new();
    let mut holders = Vec::new();
    for f in &files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        assert!(
            !name.ends_with(".tmp"),
            "temporary file left behind: {}",
            f.display()
        );
        let bytes = std::fs::read(f).expect("read");
        for layer in layers(&bytes) {
            scanned += 1;
            bytes_scanned += layer.len();
            let pem = String::from_utf8_lossy(&layer).contains("PRIVATE KEY-----");
            for s in &secrets {
                if let Some(how) = s.found_in(&layer) {
                    if allowed(f, &s.label) {
                        holders.push(f.clone());
                    } else {
                        leaks.push(format!("{}: {} ({how})", f.display(), s.label));
                    }
                }
            }
            if pem && !allowed(f, "") {
                leaks.push(format!("{}: a PEM private key", f.display()));
            }
        }
    }
    // Everything printed.
    let transcript = w.transcript();
    for r in &transcript {
        for (stream, text) in [
            ("stdout", &r.stdout),
            ("stderr", &r.stderr),
            ("command line", &r.command_line),
        ] {
            scanned += 1;
            bytes_scanned += text.len();
            for s in &secrets {
                if let Some(how) = s.found_in(text.as_bytes()) {
                    leaks.push(format!(
                        "{stream} of `{}`: {} ({how})",
                        r.command_line, s.label
                    ));
                }
            }
            if text.contains("PRIVATE KEY-----") {
                leaks.push(format!(
                    "{stream} of `{}`: a PEM private key",
                    r.command_line
                ));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "private key material leaked:\n{}",
        leaks.join("\n")
    );
    // The scan itself works: the places that must hold keys do.
    for must in [
        &root_keys,
        &targets_keys,
        &decrypted,
        &export,
        &signing_files[0],
        &signing_files[1],
    ] {
        assert!(
            holders.contains(must),
            "scan found no key in {}",
            must.display()
        );
    }
    assert!(
        holders.iter().any(|h| h.starts_with(&backup_dir)),
        "scan found no key in the backup copy"
    );

    // Modes.
    let mut checked_modes = vec![
        root_keys.clone(),
        targets_keys.clone(),
        encrypted.clone(),
        decrypted.clone(),
        export.clone(),
        sheet.clone(),
        w.offline.signer_home().join("identity.txt"),
        w.offline.signer_home().join("cosigners.json"),
        w.offline.signer_home().join("memory").join("acme.json"),
    ];
    checked_modes.extend(signing_files.iter().cloned());
    for e in std::fs::read_dir(&backup_dir).expect("backup dir") {
        checked_modes.push(e.expect("entry").path());
    }
    for p in &checked_modes {
        assert_eq!(mode(p), 0o600, "{} has mode {:o}", p.display(), mode(p));
    }
    tests::report!(
        "hostile_secrets: {} keys x {} encodings searched in {} files/streams ({} commands, {} bytes): no leak; {} secret files are 0600",
        secrets.len(),
        secrets[0].needles.len(),
        scanned,
        transcript.len(),
        bytes_scanned,
        checked_modes.len()
    );
}
