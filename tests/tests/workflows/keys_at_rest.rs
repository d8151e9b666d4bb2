//! Keys at rest, both ways (issue 19): `signer keys encrypt` turns the root keys tarball of a
//! real first-time rotation into a passphrase-encrypted `.tgz.age` and `signer keys decrypt`
//! turns it back, byte for byte; refusals write nothing; on a terminal the passphrase is
//! asked twice when encrypting. Every message a person reads is a snapshot.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tests::harness::{path_str, tarball_keyids, World, WorldOptions};

/// Unix permission bits of `path`.
fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// `age -d` with a passphrase, as a person would check the file with the age tool.
fn age_decrypt(path: &Path, passphrase: &str) -> Vec<u8> {
    use std::io::Read;
    let bytes = std::fs::read(path).unwrap();
    let identity = age::scrypt::Identity::new(passphrase.to_string().into());
    let decryptor = age::Decryptor::new_buffered(&bytes[..]).unwrap();
    let mut out = Vec::new();
    decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The files directly in `dir`, sorted (to show that no temporary file was left).
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn encrypt_and_decrypt_round_trip_with_refusals() {
    let w = World::new(WorldOptions::default());
    let keys = w.offline.path("root.keys.tgz");
    let k1 = w.first_time_rotation(&w.offline, &keys);
    let original = std::fs::read(&keys).unwrap();
    let pass = w.offline.path("passphrase.txt");
    std::fs::write(&pass, "correct horse battery staple\n").unwrap();
    let wrong = w.offline.path("wrong.txt");
    std::fs::write(&wrong, "battery horse\n").unwrap();
    let (pf, wf) = (path_str(&pass), path_str(&wrong));
    let encrypted = w.offline.path("root.keys.tgz.age");

    // Encrypt: the new file holds the very bytes, the source is kept.
    let run = w
        .signer_keys(&w.offline, "encrypt", &keys, &["--passphrase-file", pf])
        .ok();
    w.snapshot_text("keys-encrypt", &run.stdout);
    assert_eq!(mode(&encrypted), 0o600);
    assert_eq!(
        age_decrypt(&encrypted, "correct horse battery staple"),
        original
    );
    assert_eq!(
        std::fs::read(&keys).unwrap(),
        original,
        "source kept as it was"
    );

    // The encrypted file is a keys file like any other: listed with the passphrase.
    w.signer_keys(&w.offline, "list", &encrypted, &["--passphrase-file", pf])
        .ok()
        .says(k1.as_str());

    // Refusals, each one line naming the file; nothing is written or removed.
    let watch = w.watch(&[&keys, &encrypted]);
    let before = files_in(&w.offline.home);
    // Each passphrase file first: `--passphrase-file FILE …`.
    for (name, verb, file, extra) in [
        (
            "keys-encrypt-output-exists",
            "encrypt",
            &keys,
            vec![pf, "--remove-source"],
        ),
        (
            "keys-encrypt-already-encrypted",
            "encrypt",
            &encrypted,
            vec![pf],
        ),
        (
            "keys-encrypt-output-name",
            "encrypt",
            &keys,
            vec![pf, "--out", "other.keys.tgz"],
        ),
        ("keys-decrypt-not-encrypted", "decrypt", &keys, vec![pf]),
        (
            "keys-decrypt-wrong-passphrase",
            "decrypt",
            &encrypted,
            vec![wf, "--out", "back.keys.tgz", "--remove-source"],
        ),
    ] {
        let mut args = vec!["--passphrase-file"];
        args.extend(extra);
        let run = w.signer_keys(&w.offline, verb, file, &args);
        assert_eq!(run.code, 1, "{name}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{name}: {}", run.stderr);
        w.snapshot_text(name, &run.stderr);
    }
    watch.assert_unchanged();
    assert_eq!(files_in(&w.offline.home), before, "a refusal left a file");

    // Decrypt with --remove-source: the plain file is the original, the .age goes after the
    // check.
    let back = w.offline.path("back.keys.tgz");
    let run = w
        .signer_keys(
            &w.offline,
            "decrypt",
            &encrypted,
            &[
                "--out",
                path_str(&back),
                "--passphrase-file",
                pf,
                "--remove-source",
            ],
        )
        .ok();
    w.snapshot_text("keys-decrypt-remove-source", &run.stdout);
    assert_eq!(std::fs::read(&back).unwrap(), original);
    assert_eq!(mode(&back), 0o600);
    assert!(!encrypted.exists());
    assert_eq!(tarball_keyids(&back, shared::metadata::Role::Root).len(), 2);

    // Both conversions are on record, and the log still verifies.
    let log = w.signer(&w.offline, ["audit", "show"]).ok().stdout;
    assert!(log.contains("(encrypted; 2 key(s))"), "{log}");
    assert!(log.contains("(plain; 2 key(s); source removed)"), "{log}");
    w.signer(&w.offline, ["audit", "verify"]).ok();
}

#[test]
fn a_person_types_the_passphrase_twice_when_encrypting() {
    let w = World::new(WorldOptions::default());
    let keys = w.offline.path("root.keys.tgz");
    w.first_time_rotation(&w.offline, &keys);
    let original = std::fs::read(&keys).unwrap();
    let encrypted = w.offline.path("root.keys.tgz.age");
    let encrypt = ["keys", "encrypt", "--keys", path_str(&keys)];

    // Two different passphrases: nothing is written.
    let run = w.signer_on_terminal(&w.offline, encrypt, "first try\nsecond try\n");
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout.contains("Passphrase for") && run.stdout.contains("Repeat the passphrase for"),
        "{}",
        run.stdout
    );
    let said = run.stdout.lines().last().unwrap_or_default().trim_end();
    w.snapshot_text("keys-encrypt-passphrases-differ", &format!("{said}\n"));
    assert!(!encrypted.exists());

    // The same one twice: encrypted, and decrypting on the terminal asks once.
    w.signer_on_terminal(&w.offline, encrypt, "one two three\none two three\n")
        .ok()
        .says("Verified:");
    assert_eq!(age_decrypt(&encrypted, "one two three"), original);
    let back = w.offline.path("back.keys.tgz");
    let run = w
        .signer_on_terminal(
            &w.offline,
            [
                "keys",
                "decrypt",
                "--keys",
                path_str(&encrypted),
                "--out",
                path_str(&back),
            ],
            "one two three\n",
        )
        .ok();
    assert_eq!(
        run.stdout.matches("Passphrase for").count(),
        1,
        "{}",
        run.stdout
    );
    assert_eq!(std::fs::read(&back).unwrap(), original);
}
