//! In-process tests of `signer keys …`: backups, paper sheets, restore, export, list.

mod keys_common;

use clap::Parser;
use keys_common::{ed_key, listed, mode_of, pass, root_json, rsa_key};
use rand::SeedableRng as _;
use shared::keys::KeyId;
use shared::metadata::Role;
use shared::metadata::Timestamp;
use shared::tarball::KeysTarball;
use signer::ctx::Ctx;
use signer::keys::{backup, export, paper, sheet, KeysCommand, KeysError};
use signer::keystore::{self, KeystoreError};
use signer::state::StateDir;
use signer::ui::Ui;
use std::path::Path;

/// A path as a command-line argument.
fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 test path")
}

/// The `keys` subcommands as they parse from a command line.
#[derive(Parser)]
struct KeysCli {
    #[command(subcommand)]
    cmd: KeysCommand,
}

fn parse(args: &[&str]) -> Result<KeysCommand, clap::Error> {
    let mut full = vec!["keys"];
    full.extend_from_slice(args);
    KeysCli::try_parse_from(full).map(|c| c.cmd)
}

/// Runs `signer keys ARGS…` in the state directory `state` (no terminal, `--yes`, a
/// seeded generator): what it printed, or its one-line error.
fn run(state: &std::path::Path, args: &[&str]) -> Result<String, String> {
    let cmd = parse(args).map_err(|e| e.to_string())?;
    in_ctx(state, |ctx| signer::keys::run(ctx, &cmd))
}

/// Runs `f` with a context in `state`; its output, or its one-line error.
fn in_ctx(
    state: &std::path::Path,
    f: impl FnOnce(&mut Ctx<'_>) -> Result<(), signer::error::SignerError>,
) -> Result<String, String> {
    let (mut ui, out) = Ui::scripted("", false, true);
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut ctx = Ctx::new(StateDir::at(state), &mut ui, Timestamp::now(), &mut rng);
    f(&mut ctx).map_err(|e| signer::error::one_line(&e))?;
    Ok(out.text())
}

/// `keys print` of the tarball `keys` (passphrase "pw") compared with a root listing
/// `listed_keys`, into `sheet`, printed now.
fn print_sheet(
    keys: &Path,
    listed_keys: &[&shared::keys::PrivateKey],
    sheet: &Path,
) -> Result<signer::keys::reference::ActiveRootKey, KeysError> {
    paper::print_sheet(
        keys,
        &listed(listed_keys),
        sheet,
        &pass("pw"),
        &Timestamp::now(),
    )
}

fn save_tarball(path: &std::path::Path, keys: &[(Role, &shared::keys::PrivateKey)]) {
    let mut t = KeysTarball::new();
    for (role, k) in keys {
        t.add_private_key(*role, k).unwrap();
    }
    keystore::save_new(path, &t, &pass("pw")).unwrap();
}

#[test]
fn backup_copy_is_verified_and_corruption_detected() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("root.keys.tgz");
    save_tarball(
        &keys,
        &[(Role::Root, &ed_key(1)), (Role::Targets, &ed_key(2))],
    );
    let media = dir.path().join("usb");
    std::fs::create_dir(&media).unwrap();

    let report = backup::backup(&keys, &media, &pass("pw")).unwrap();
    assert_eq!(report.copy, media.join("root.keys.tgz"));
    assert_eq!(
        std::fs::read(&report.copy).unwrap(),
        std::fs::read(&keys).unwrap()
    );
    assert_eq!(mode_of(&report.copy), 0o600);
    assert_eq!(report.keyids.len(), 2);

    // Never over an existing copy.
    assert!(matches!(
        backup::backup(&keys, &media, &pass("pw")).unwrap_err(),
        KeysError::OutputExists { .. }
    ));
    // Not into a missing directory.
    assert!(matches!(
        backup::backup(&keys, &dir.path().join("not-mounted"), &pass("pw")).unwrap_err(),
        KeysError::NotADirectory { .. }
    ));

    // A corrupted copy is detected, with the offset of the first bad byte.
    let original = std::fs::read(&keys).unwrap();
    let tarball = keystore::open(&keys, &pass("pw")).unwrap();
    let mut bad = original.clone();
    bad[100] ^= 0x01;
    std::fs::write(&report.copy, &bad).unwrap();
    let err = backup::verify_copy(&original, &tarball, &report.copy, &pass("pw")).unwrap_err();
    assert!(matches!(err, KeysError::CopyMismatch { .. }), "{err}");
    assert!(err.to_string().contains("byte 100"), "{err}");

    // A truncated copy too.
    std::fs::write(&report.copy, &original[..original.len() - 1]).unwrap();
    let err = backup::verify_copy(&original, &tarball, &report.copy, &pass("pw")).unwrap_err();
    assert!(err.to_string().contains("bytes"), "{err}");

    // The intact copy verifies.
    std::fs::write(&report.copy, &original).unwrap();
    backup::verify_copy(&original, &tarball, &report.copy, &pass("pw")).unwrap();
}

#[test]
fn encrypted_tarball_backup_stays_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("root.keys.tgz.age");
    save_tarball(&keys, &[(Role::Root, &ed_key(1))]);
    let media = dir.path().join("usb");
    std::fs::create_dir(&media).unwrap();
    let pf = dir.path().join("pass.txt");
    std::fs::write(&pf, "pw\n").unwrap();
    let state = dir.path().join("state");
    let text = run(
        &state,
        &[
            "backup",
            "--keys",
            p(&keys),
            "--to",
            p(&media),
            "--passphrase-file",
            p(&pf),
        ],
    )
    .unwrap();
    assert!(text.contains("Verified"), "{text}");
    let copy = media.join("root.keys.tgz.age");
    assert!(std::fs::read(&copy)
        .unwrap()
        .starts_with(b"age-encryption.org/"));
    // Wrong passphrase: the source does not even open, nothing is copied.
    let media2 = dir.path().join("usb2");
    std::fs::create_dir(&media2).unwrap();
    let err = backup::backup(&keys, &media2, &pass("nope")).unwrap_err();
    assert!(
        matches!(
            err,
            KeysError::Keystore(KeystoreError::WrongPassphrase { .. })
        ),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&media2).unwrap().count(), 0);
    // The backup was audited.
    let records = signer::audit::read_records(&state).unwrap();
    assert_eq!(records.len(), 1);
    signer::audit::verify(&state).unwrap();
}

#[test]
fn print_restore_round_trip_ed25519() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("root.keys.tgz");
    let key = ed_key(1);
    save_tarball(&keys, &[(Role::Root, &key), (Role::Targets, &ed_key(2))]);
    let sheet = dir.path().join("sheet.txt");
    let active = print_sheet(&keys, &[&key], &sheet).unwrap();
    assert_eq!(&active.keyid, key.keyid());
    assert_eq!(mode_of(&sheet), 0o600);
    let text = std::fs::read_to_string(&sheet).unwrap();
    assert!(text.contains(&format!("keyid:     {}", key.keyid())));
    assert!(text.contains("key type:  ED25519"));
    assert!(text.contains("QR code 1 of 1"));
    // Never twice to the same file.
    assert!(matches!(
        print_sheet(&keys, &[&key], &sheet).unwrap_err(),
        KeysError::OutputExists { .. }
    ));

    // Restore into a new, encrypted tarball.
    let restored = dir.path().join("restored.keys.tgz.age");
    let report = paper::restore(&sheet, None, &restored, Role::Root, &pass("pw2")).unwrap();
    assert!(report.created_tarball);
    assert_eq!(&report.keyid, key.keyid());
    assert_eq!(
        report.sec_file,
        format!("tufrepo/keys/fioctl-root-{}.sec", key.keyid())
    );
    let t = keystore::open(&restored, &pass("pw2")).unwrap();
    let found = t.private_key(key.keyid()).unwrap().unwrap();
    assert_eq!(&found.key.to_json()[..], &key.to_json()[..]);
    assert!(t.contains(&format!("tufrepo/keys/fioctl-root-{}.pub", key.keyid())));

    // Restoring again changes nothing.
    let err = paper::restore(&sheet, None, &restored, Role::Root, &pass("pw2")).unwrap_err();
    assert!(matches!(err, KeysError::AlreadyHeld { .. }), "{err}");
}

#[test]
fn print_restore_round_trip_rsa() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("root.keys.tgz");
    let key = rsa_key();
    save_tarball(&keys, &[(Role::Root, &key)]);
    let sheet = dir.path().join("sheet.txt");
    print_sheet(&keys, &[&key], &sheet).unwrap();
    let text = std::fs::read_to_string(&sheet).unwrap();
    assert!(text.contains("key type:  RSA"));
    assert!(text.contains("PKCS#1 PEM"));
    // 3243 PEM bytes = 203 lines of 16 bytes; several QR codes, each on its own page.
    assert!(text.contains(" 203: "), "expected 203 lines");
    assert!(!text.contains(" 204: "));
    assert!(text.contains("QR code 2 of"));
    assert!(text.contains('\u{0c}'));
    for l in text.lines() {
        assert!(l.chars().count() <= 80, "too wide for paper: {l}");
    }

    let restored = dir.path().join("restored.keys.tgz");
    let report = paper::restore(&sheet, None, &restored, Role::Root, &pass("x")).unwrap();
    assert_eq!(&report.keyid, key.keyid());
    assert_eq!(report.keytype, "RSA");
    let t = keystore::open(&restored, &pass("x")).unwrap();
    let found = t.private_key(key.keyid()).unwrap().unwrap();
    assert_eq!(&found.key.to_json()[..], &key.to_json()[..]);

    // The scanned QR texts alone restore the key as well.
    let qr = sheet::qr_texts(&key).unwrap();
    assert!(qr.len() > 1);
    let scanned_text: Vec<&str> = qr.iter().rev().map(|t| t.as_str()).collect();
    let scanned = dir.path().join("scanned.txt");
    std::fs::write(&scanned, scanned_text.join("\n")).unwrap();
    let restored2 = dir.path().join("restored2.keys.tgz");
    let report = paper::restore(&scanned, None, &restored2, Role::Root, &pass("x")).unwrap();
    assert_eq!(&report.keyid, key.keyid());
}

#[test]
fn corrupted_sheet_line_is_reported_by_number() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("root.keys.tgz");
    save_tarball(&keys, &[(Role::Root, &rsa_key())]);
    let sheet = dir.path().join("sheet.txt");
    print_sheet(&keys, &[&rsa_key()], &sheet).unwrap();
    let text = std::fs::read_to_string(&sheet).unwrap();

    // Flip one hex digit in line 57.
    let edited: Vec<String> = text
        .lines()
        .map(|l| {
            if let Some(rest) = l.strip_prefix(" 057: ") {
                let mut chars: Vec<char> = rest.chars().collect();
                chars[0] = if chars[0] == '0' { '1' } else { '0' };
                format!(" 057: {}", chars.into_iter().collect::<String>())
            } else {
                l.to_string()
            }
        })
        .collect();
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, edited.join("\n")).unwrap();
    let target = dir.path().join("restored.keys.tgz");
    let err = paper::restore(&bad, None, &target, Role::Root, &pass("x")).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("line 57: check code does not match"), "{msg}");
    assert!(
        !msg.contains("line 56") && !msg.contains("line 58"),
        "{msg}"
    );
    assert!(!target.exists(), "nothing may be written");

    // A dropped line is named too.
    let dropped: Vec<&str> = text.lines().filter(|l| !l.starts_with(" 120: ")).collect();
    std::fs::write(&bad, dropped.join("\n")).unwrap();
    let msg = paper::restore(&bad, None, &target, Role::Root, &pass("x"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("line 120 is missing"), "{msg}");
    assert!(!target.exists());

    // Through the command: the error names the line as well.
    let state = dir.path().join("state");
    let err = run(
        &state,
        &["restore", "--from", p(&bad), "--keys", p(&target)],
    )
    .unwrap_err();
    assert!(err.to_string().contains("line 120"), "{err}");
}

#[test]
fn sheet_of_another_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("root.keys.tgz");
    let key = ed_key(1);
    let other = ed_key(9);
    save_tarball(&keys, &[(Role::Root, &key)]);
    let sheet = dir.path().join("sheet.txt");
    print_sheet(&keys, &[&key], &sheet).unwrap();
    let target = dir.path().join("restored.keys.tgz");

    // The keyid given does not match the sheet's.
    let err =
        paper::restore(&sheet, Some(other.keyid()), &target, Role::Root, &pass("x")).unwrap_err();
    assert!(err.to_string().contains("differs from the sheet"), "{err}");

    // The sheet's keyid line names another key than its lines (mixed-up sheets).
    let text = std::fs::read_to_string(&sheet)
        .unwrap()
        .replace(key.keyid().as_str(), other.keyid().as_str());
    let mixed = dir.path().join("mixed.txt");
    std::fs::write(&mixed, text).unwrap();
    let err = paper::restore(&mixed, None, &target, Role::Root, &pass("x")).unwrap_err();
    match &err {
        KeysError::Sheet {
            problem: sheet::SheetError::KeyIdMismatch { expected, actual },
            ..
        } => {
            assert_eq!(expected, other.keyid());
            assert_eq!(actual, key.keyid());
        }
        other => panic!("{other}"),
    }
    assert!(!target.exists());

    // Typed groups only: --keyid required, and checked.
    let sheet_text = std::fs::read_to_string(&sheet).unwrap();
    let typed: Vec<&str> = sheet_text
        .lines()
        .filter(|l| l.starts_with(" 00"))
        .collect();
    let groups = dir.path().join("groups.txt");
    std::fs::write(&groups, typed.join("\n")).unwrap();
    let err = paper::restore(&groups, None, &target, Role::Root, &pass("x")).unwrap_err();
    assert!(err.to_string().contains("--keyid"), "{err}");
    let err = paper::restore(
        &groups,
        Some(other.keyid()),
        &target,
        Role::Root,
        &pass("x"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("another key"), "{err}");
    let state = dir.path().join("state");
    let out = run(
        &state,
        &[
            "restore",
            "--groups-file",
            p(&groups),
            "--keyid",
            key.keyid().as_str(),
            "--keys",
            p(&target),
            "--role",
            "targets",
        ],
    )
    .unwrap();
    assert!(out.contains("Created"), "{out}");
    let t = keystore::open(&target, &pass("x")).unwrap();
    assert!(t.contains(&format!("tufrepo/keys/fioctl-targets-{}.sec", key.keyid())));
}

#[test]
fn active_root_key_from_root_json() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("root.keys.tgz");
    let old = ed_key(1);
    let new = ed_key(2);
    save_tarball(&keys, &[(Role::Root, &old), (Role::Root, &new)]);
    let root = dir.path().join("root.json");
    std::fs::write(&root, root_json(&[&new], 3)).unwrap();
    let state = dir.path().join("state");

    // Without --root and without a pin: the tarball alone cannot tell, so refused.
    let out = dir.path().join("k.sec");
    let err = run(
        &state,
        &[
            "export-root",
            "--keys",
            p(&keys),
            "--out",
            p(&out),
            "--i-understand-this-exports-a-private-key",
        ],
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("signer trust init") && err.to_string().contains("--root"),
        "{err}"
    );
    assert!(!out.exists());

    // With --root: the key listed there.
    let k = export::export_root(&keys, &listed(&[&new]), &out, true, &pass("pw")).unwrap();
    assert_eq!(&k.keyid, new.keyid());
    assert_eq!(k.created_at.as_deref(), Some("2026-01-02T03:04:05Z"));

    // A root that lists neither key.
    let err = export::export_root(
        &keys,
        &listed(&[&ed_key(7)]),
        &dir.path().join("x.sec"),
        true,
        &pass("pw"),
    )
    .unwrap_err();
    assert!(matches!(err, KeysError::NoActiveRootKey { .. }), "{err}");

    // The sheet carries the creation date from x-key-owners.
    let sheet = dir.path().join("sheet.txt");
    let text = run(
        &state,
        &[
            "print",
            "--keys",
            p(&keys),
            "--root",
            p(&root),
            "--out",
            p(&sheet),
        ],
    )
    .unwrap();
    assert!(text.contains(new.keyid().as_str()), "{text}");
    let sheet_text = std::fs::read_to_string(&sheet).unwrap();
    assert!(sheet_text.contains("created:   2026-01-02T03:04:05Z"));

    // list shows which key is active and never private bytes.
    let listing = run(&state, &["list", "--keys", p(&keys), "--root", p(&root)]).unwrap();
    assert!(listing.contains("active: yes, role(s) root"), "{listing}");
    assert!(listing.contains("active: no"), "{listing}");
    assert!(!listing.contains(&hex::encode([2u8; 32])), "{listing}");
    let json = run(
        &state,
        &["list", "--keys", p(&keys), "--root", p(&root), "--json"],
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let active: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| !k["active-in"].as_array().unwrap().is_empty())
        .map(|k| k["keyid"].as_str().unwrap())
        .collect();
    assert_eq!(active, vec![new.keyid().as_str()]);

    // The export and the print are in the audit log.
    let shown = in_ctx(&state, |ctx| {
        signer::audit::run(ctx, &signer::audit::AuditCommand::Show(Default::default()))
    })
    .unwrap();
    assert!(shown.contains("PRIVATE KEY EXPORTED (paper)"), "{shown}");
}

#[test]
fn export_root_flag_is_required_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("root.keys.tgz");
    save_tarball(&keys, &[(Role::Root, &ed_key(1))]);
    let out = dir.path().join("root.sec");
    let state = dir.path().join("state");
    let root = dir.path().join("root.json");
    std::fs::write(&root, root_json(&[&ed_key(1)], 3)).unwrap();
    let mut args = vec![
        "export-root",
        "--keys",
        p(&keys),
        "--root",
        p(&root),
        "--out",
        p(&out),
    ];
    let err = run(&state, &args).unwrap_err();
    assert!(
        err.to_string()
            .contains("--i-understand-this-exports-a-private-key"),
        "{err}"
    );
    assert!(!out.exists());
    args.push("--i-understand-this-exports-a-private-key");
    let text = run(&state, &args).unwrap();
    assert!(text.contains(ed_key(1).keyid().as_str()), "{text}");
    assert_eq!(mode_of(&out), 0o600);
    let records = signer::audit::read_records(&state).unwrap();
    assert_eq!(records.len(), 1);
}

#[test]
fn restore_needs_exactly_one_source() {
    assert!(parse(&["restore", "--keys", "k.tgz"]).is_err());
    assert!(parse(&[
        "restore",
        "--keys",
        "k.tgz",
        "--from",
        "a",
        "--groups-file",
        "b"
    ])
    .is_err());
    assert!(parse(&["restore", "--keys", "k.tgz", "--from", "a"]).is_ok());
    assert!(parse(&[
        "restore",
        "--keys",
        "k.tgz",
        "--groups-file",
        "b",
        "--keyid",
        "nothex"
    ])
    .is_err());
    let id = KeyId::parse(&hex::encode([1u8; 32])).unwrap();
    assert!(parse(&[
        "restore",
        "--keys",
        "k.tgz",
        "--groups-file",
        "b",
        "--keyid",
        id.as_str()
    ])
    .is_ok());
}

#[test]
fn shamir_shares_of_an_rsa_key_any_three_of_five_and_scanned_qr_texts() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let keys = dir.path().join("root.keys.tgz");
    let key = rsa_key();
    save_tarball(&keys, &[(Role::Root, &key)]);
    let root = dir.path().join("root.json");
    std::fs::write(&root, root_json(&[&key], 3)).unwrap();
    let out = dir.path().join("shares");
    let said = run(
        &state,
        &[
            "split",
            "--keys",
            keys.to_str().unwrap(),
            "--root",
            root.to_str().unwrap(),
            "--factory",
            "acme",
            "--shares",
            "5",
            "--threshold",
            "3",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(said.contains("any 3 restore it"), "{said}");
    let sheet = |x: usize| out.join(format!("acme-root-share-{x}-of-5.txt"));
    let text = std::fs::read_to_string(sheet(1)).unwrap();
    assert!(
        text.contains("key type:   RSA") && text.contains("QR code 2 of"),
        "{text}"
    );
    for l in text.lines() {
        assert!(l.chars().count() <= 80, "too wide for paper: {l}");
    }
    // No sheet holds the key's PEM lines (each is a share, not the key).
    let pem_hex = hex::encode(keys_common::RSA_FIXTURE_PEM.as_bytes());
    assert!(!text.replace(' ', "").contains(&pem_hex[..32]));

    // Three sheets in any order; the first one as scanned QR texts only.
    let hex: String = text
        .lines()
        .filter_map(|l| {
            let (n, rest) = l.trim().split_once(':')?;
            n.parse::<usize>().ok()?;
            Some(
                rest.split('|')
                    .next()?
                    .split_whitespace()
                    .collect::<String>(),
            )
        })
        .collect();
    let scanned = dir.path().join("share-1-scanned.txt");
    let texts = sheet::qr_texts_for("SHARE", key.keyid(), &hex).unwrap();
    let lines: Vec<&str> = texts.iter().map(|t| t.as_str()).collect();
    std::fs::write(&scanned, lines.join("\n")).unwrap();
    let restored = dir.path().join("restored.keys.tgz");
    let said = run(
        &state,
        &[
            "combine",
            sheet(5).to_str().unwrap(),
            scanned.to_str().unwrap(),
            sheet(3).to_str().unwrap(),
            "--out",
            restored.to_str().unwrap(),
        ],
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(said.contains("shares 1, 3, 5 of a 3-of-5 split"), "{said}");
    let t = KeysTarball::read(&restored).unwrap();
    let found = t.private_key(key.keyid()).unwrap().unwrap();
    assert_eq!(&found.key.to_json()[..], &key.to_json()[..]);

    // A whole-key paper sheet is not a share; two shares of five are too few.
    let paper_sheet = dir.path().join("paper.txt");
    print_sheet(&keys, &[&key], &paper_sheet).unwrap();
    let e = run(
        &state,
        &[
            "combine",
            paper_sheet.to_str().unwrap(),
            sheet(2).to_str().unwrap(),
            "--out",
            "x.tgz",
        ],
    )
    .unwrap_err();
    assert!(format!("{e:#}").contains("not a key share sheet"), "{e:#}");
    let e = run(
        &state,
        &[
            "combine",
            sheet(1).to_str().unwrap(),
            sheet(2).to_str().unwrap(),
            "--out",
            "x.tgz",
        ],
    )
    .unwrap_err();
    assert!(
        format!("{e:#}").contains("2 share(s) given (1, 2) but this split needs 3 of 5"),
        "{e:#}"
    );
}
