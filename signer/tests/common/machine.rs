//! A signer machine for binary tests: a temporary directory with its own state directory,
//! `signer` run without a terminal, identity and trust set up as on first use.

// Shared by several test binaries; not every user needs every helper.
#![allow(dead_code)]

use std::path::PathBuf;

use assert_cmd::Command;
use predicates::prelude::*;
use shared::archive::Compression;
use shared::bundle::{Operation, TransferBundle};

use crate::factory::Factory;

pub struct Machine {
    /// The machine's directory.
    pub tmp: tempfile::TempDir,
}

impl Machine {
    pub fn new() -> Machine {
        Machine {
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    pub fn state(&self) -> PathBuf {
        self.path("state")
    }

    /// `signer` with this machine's state directory, no terminal.
    pub fn signer(&self) -> Command {
        let mut c = Command::cargo_bin("signer").unwrap();
        c.env("SIGNER_HOME", self.state())
            .env_remove("SIGNER_KEYS_PASSPHRASE")
            .env("NO_COLOR", "1")
            .current_dir(self.tmp.path());
        c
    }

    pub fn write_bundle(&self, name: &str, b: &TransferBundle) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, b.to_bytes(Compression::Gzip).unwrap()).unwrap();
        p
    }

    /// Identity and trust, as on first use.
    pub fn set_up(&self, f: &Factory) -> String {
        self.signer()
            .args(["identity", "init"])
            .assert()
            .success()
            .stdout(predicate::str::contains("age1"));
        let root = self.path("root.json");
        std::fs::write(&root, f.chain[0].to_json().unwrap()).unwrap();
        // Without a terminal and without --yes nothing is pinned.
        self.signer()
            .args(["trust", "init"])
            .arg(&root)
            .assert()
            .code(1)
            .stderr(predicate::str::contains("--yes"));
        self.signer()
            .args(["trust", "init", "--yes"])
            .arg(&root)
            .assert()
            .success()
            .stdout(predicate::str::contains("fingerprint:"));
        self.signer()
            .args(["trust", "show"])
            .assert()
            .success()
            .stdout(predicate::str::contains("version:      1"));
        signer::identity::recipient(&self.state()).unwrap()
    }
}

pub fn first_time_request(m: &Machine, f: &Factory, recipient: &str) -> PathBuf {
    let sealed = signer::identity::encrypt_to(recipient, &f.first_root.to_json()).unwrap();
    m.write_bundle(
        "req.tufbundle",
        &f.request(vec![Operation::FirstTimeRootRotation], Some(sealed)),
    )
}
