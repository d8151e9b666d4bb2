//! Throwaway SoftHSM2 tokens for tests with a real PKCS#11 module: each [`SoftHsm`] has its
//! own configuration file and token directory (`SOFTHSM2_CONF`), so tests never share or
//! leave tokens. The module and `softhsm2-util` are found through [`crate::tools::SOFTHSM2`];
//! tests that use this are ignored (with the reason) where SoftHSM2 is not installed.

use std::path::PathBuf;
use std::process::Command;

use crate::tools;

/// The user PIN of every test token.
pub const PIN: &str = "123456";

/// The security officer PIN of every test token.
pub const SO_PIN: &str = "12345678";

/// A SoftHSM2 configuration with its own token directory.
pub struct SoftHsm {
    dir: tempfile::TempDir,
    module: PathBuf,
    util: PathBuf,
}

impl SoftHsm {
    /// A fresh configuration with no token yet.
    pub fn create() -> SoftHsm {
        let found = tools::SOFTHSM2.require();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tokens")).unwrap();
        std::fs::write(
            dir.path().join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                dir.path().join("tokens").display()
            ),
        )
        .unwrap();
        std::fs::write(dir.path().join("pin"), format!("{PIN}\n")).unwrap();
        std::fs::write(dir.path().join("wrong-pin"), "000000\n").unwrap();
        SoftHsm {
            dir,
            module: found.path,
            util: found.helpers[0].clone(),
        }
    }

    /// The PKCS#11 module in use.
    pub fn module(&self) -> &std::path::Path {
        &self.module
    }

    /// The value for `SOFTHSM2_CONF`.
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    /// A file holding the right user PIN.
    pub fn pin_file(&self) -> PathBuf {
        self.dir.path().join("pin")
    }

    /// A file holding a wrong user PIN.
    pub fn wrong_pin_file(&self) -> PathBuf {
        self.dir.path().join("wrong-pin")
    }

    /// Initialises a new token labelled `label` in a free slot.
    pub fn init_token(&self, label: &str) {
        let out = Command::new(&self.util)
            .env("SOFTHSM2_CONF", self.conf())
            .args([
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                PIN,
                "--so-pin",
                SO_PIN,
            ])
            .output()
            .expect("softhsm2-util runs");
        assert!(
            out.status.success(),
            "softhsm2-util --init-token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `pkcs11:token=LABEL[;object=OBJECT]?module-path=…` (no PIN in the URI).
    pub fn uri(&self, token: &str, object: Option<&str>) -> String {
        let object = object.map(|o| format!(";object={o}")).unwrap_or_default();
        format!(
            "pkcs11:token={token}{object}?module-path={}",
            self.module.display()
        )
    }

    /// The same with `pin-source=file:` pointing at the right PIN.
    pub fn uri_with_pin(&self, token: &str, object: Option<&str>) -> String {
        format!(
            "{}&pin-source=file:{}",
            self.uri(token, object),
            self.pin_file().display()
        )
    }
}
