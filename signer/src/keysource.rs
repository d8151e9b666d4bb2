//! Where offline private keys live, and the one interface through which the signer signs.
//!
//! A key source is named by the value of `--keys` / `--targets-keys`:
//!
//! * a **path**: a keys tarball (`*.tgz`, or `*.tgz.age` encrypted with a passphrase), see
//!   [`crate::keystore`];
//! * an **RFC 7512 PKCS#11 URI** (it starts with `pkcs11:`): a key pair on a hardware token
//!   (YubiKey, Nitrokey, an HSM, SoftHSM), see [`crate::pkcs11`], e.g.
//!   `pkcs11:token=factory-root;object=root-2026?module-path=/usr/lib/softhsm/libsofthsm2.so`.
//!
//! Whatever holds the key, signing goes through [`KeySigner`]: the key id (computed from the
//! public key exactly as for tarball keys) and a signature with the method names and bytes
//! that [`shared::keys::PublicKey::verify`] checks (`ed25519`, `rsassa-pss-sha256`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use clap::Args;

use crate::error::Result;
use crate::keystore::PassphraseArgs;

/// The URI scheme that selects a PKCS#11 token.
pub const PKCS11_SCHEME: &str = "pkcs11:";

/// A parsed RFC 7512 PKCS#11 URI (the attributes this signer uses).
#[derive(Clone, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// `token=`: the token label.
    pub token: String,
    /// `object=`: the key label (used when a key is created; optional otherwise).
    pub object: Option<String>,
    /// `serial=`: the token serial number, when several tokens share a label.
    pub serial: Option<String>,
    /// `module-path=`: the PKCS#11 module (shared library) to load.
    pub module_path: PathBuf,
    /// `pin-source=file:...`: a file holding the user PIN.
    pub pin_source: Option<PathBuf>,
}

impl fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Pkcs11Uri {
    /// The URI without its query (no module or PIN file path), for messages and the audit log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pkcs11:token={}", pct_encode(&self.token))?;
        if let Some(o) = &self.object {
            write!(f, ";object={}", pct_encode(o))?;
        }
        if let Some(s) = &self.serial {
            write!(f, ";serial={}", pct_encode(s))?;
        }
        Ok(())
    }
}

fn pct_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn pct_decode(s: &str, attr: &str) -> std::result::Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-encoding in the {attr} attribute"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("the {attr} attribute is not UTF-8"))
}

impl FromStr for Pkcs11Uri {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Pkcs11Uri, String> {
        let rest = s
            .strip_prefix(PKCS11_SCHEME)
            .ok_or_else(|| format!("a PKCS#11 URI starts with {PKCS11_SCHEME}"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (mut token, mut object, mut serial) = (None, None, None);
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (k, v) = attr
                .split_once('=')
                .ok_or_else(|| format!("PKCS#11 URI attribute {attr:?} has no '='"))?;
            let v = pct_decode(v, k)?;
            match k {
                "token" => token = Some(v),
                "object" => object = Some(v),
                "serial" => serial = Some(v),
                // Attributes that only narrow the search further; the key is found by its id.
                "type" | "manufacturer" | "model" | "library-manufacturer"
                | "library-description" | "library-version" => {}
                other => {
                    return Err(format!(
                        "PKCS#11 URI attribute {other:?} is not supported (use token=, object=, serial=)"
                    ))
                }
            }
        }
        let (mut module_path, mut pin_source) = (None, None);
        for attr in query.split('&').filter(|a| !a.is_empty()) {
            let (k, v) = attr
                .split_once('=')
                .ok_or_else(|| format!("PKCS#11 URI query attribute {attr:?} has no '='"))?;
            let v = pct_decode(v, k)?;
            match k {
                "module-path" => module_path = Some(PathBuf::from(v)),
                "pin-source" => {
                    let file = v.strip_prefix("file:").unwrap_or(&v);
                    pin_source = Some(PathBuf::from(file));
                }
                "pin-value" => {
                    return Err(
                        "a PIN in the PKCS#11 URI would end up in shell history and logs: put it in a file (pin-source=file:/path or --pin-file) or type it at the prompt".into(),
                    )
                }
                other => {
                    return Err(format!(
                        "PKCS#11 URI query attribute {other:?} is not supported (use module-path=, pin-source=)"
                    ))
                }
            }
        }
        let token = token.filter(|t| !t.is_empty()).ok_or_else(|| {
            "the PKCS#11 URI names no token: add token=<label> (see `softhsm2-util --show-slots` or `pkcs11-tool -L`)".to_string()
        })?;
        let module_path = module_path.ok_or_else(|| {
            "the PKCS#11 URI names no module: add ?module-path=/path/to/module.so (e.g. /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so)".to_string()
        })?;
        Ok(Pkcs11Uri {
            token,
            object,
            serial,
            module_path,
            pin_source,
        })
    }
}

/// The value of `--keys` / `--targets-keys`: a keys tarball or a PKCS#11 token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A keys tarball (plain or `.age`-encrypted).
    Tarball(PathBuf),
    /// A key pair on a PKCS#11 token.
    Pkcs11(Pkcs11Uri),
}

impl FromStr for KeySource {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<KeySource, String> {
        if s.starts_with(PKCS11_SCHEME) {
            Ok(KeySource::Pkcs11(s.parse()?))
        } else if s.is_empty() {
            Err("empty keys path".into())
        } else {
            Ok(KeySource::Tarball(PathBuf::from(s)))
        }
    }
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Tarball(p) => write!(f, "{}", p.display()),
            KeySource::Pkcs11(u) => write!(f, "{u}"),
        }
    }
}

impl KeySource {
    /// The tarball path, if this source is a tarball.
    pub fn tarball(&self) -> Option<&Path> {
        match self {
            KeySource::Tarball(p) => Some(p),
            KeySource::Pkcs11(_) => None,
        }
    }
}

/// Where the PIN of a PKCS#11 token comes from (besides the URI's `pin-source`).
#[derive(Debug, Clone, Default, Args)]
pub struct PinArgs {
    /// A file holding the PIN of PKCS#11 tokens (first line). Default: the URI's
    /// pin-source, else a prompt on the terminal (no echo).
    #[arg(long, value_name = "FILE")]
    pub pin_file: Option<PathBuf>,
}

/// The key-source options every signing command takes (one definition, flattened).
#[derive(Debug, Clone, Default, Args)]
pub struct KeyArgs {
    /// Root keys: a keys tarball (`root.keys.tgz`, `*.tgz.age`) or a PKCS#11 URI
    /// (`pkcs11:token=LABEL?module-path=MODULE.so`). Only `signer sign` takes it more than once.
    /// `-k` as in fioctl.
    #[arg(long, short = 'k', value_name = "SOURCE")]
    pub keys: Vec<KeySource>,
    /// Offline targets key: a keys tarball or a PKCS#11 URI (default: --keys). A separate
    /// file lets the targets key be shared without the root key. `-K` as in fioctl.
    #[arg(long, short = 'K', value_name = "SOURCE")]
    pub targets_keys: Option<KeySource>,
    /// Rotations only: where the NEW key goes, when not where the old one is (e.g. move
    /// the root key from a tarball to a token). Default: --keys (root) or --targets-keys.
    #[arg(long, value_name = "SOURCE")]
    pub new_keys: Option<KeySource>,
    /// Passphrase of encrypted keys files.
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
    /// PIN of PKCS#11 tokens.
    #[command(flatten)]
    pub pin: PinArgs,
}

impl KeyArgs {
    /// The one `--keys` value (an error when given several).
    pub fn root(&self) -> Result<Option<&KeySource>> {
        match self.keys.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one)),
            _ => Err(crate::error::SignerError::Usage(
                "--keys is given more than once; only `signer sign` signs with several key sources"
                    .into(),
            )),
        }
    }

    /// `--targets-keys`, else the one `--keys`.
    pub fn targets_or_root(&self) -> Result<Option<&KeySource>> {
        match &self.targets_keys {
            Some(t) => Ok(Some(t)),
            None => self.root(),
        }
    }

    /// Refuses options this command does not use, naming them.
    pub fn refuse(&self, targets_keys: bool, new_keys: bool, why: &str) -> Result<()> {
        let bad = if targets_keys && self.targets_keys.is_some() {
            Some("--targets-keys")
        } else if new_keys && self.new_keys.is_some() {
            Some("--new-keys")
        } else {
            None
        };
        match bad {
            Some(flag) => Err(crate::error::SignerError::Usage(format!("{flag} {why}"))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc7512_uris() {
        let s = "pkcs11:token=factory%20root;object=root-2026;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin";
        let KeySource::Pkcs11(u) = s.parse::<KeySource>().unwrap() else {
            panic!()
        };
        assert_eq!(u.token, "factory root");
        assert_eq!(u.object.as_deref(), Some("root-2026"));
        assert_eq!(
            u.module_path,
            PathBuf::from("/usr/lib/softhsm/libsofthsm2.so")
        );
        assert_eq!(u.pin_source, Some(PathBuf::from("/run/pin")));
        // Display leaves out module and PIN file.
        assert_eq!(
            u.to_string(),
            "pkcs11:token=factory%20root;object=root-2026"
        );
        assert_eq!(
            "root.keys.tgz".parse::<KeySource>().unwrap(),
            KeySource::Tarball("root.keys.tgz".into())
        );
    }

    #[test]
    fn refuses_bad_uris() {
        for (uri, what) in [
            ("pkcs11:object=x?module-path=/m.so", "names no token"),
            ("pkcs11:token=t", "names no module"),
            (
                "pkcs11:token=t?module-path=/m.so&pin-value=1234",
                "shell history",
            ),
            (
                "pkcs11:token=t;slot-id=3?module-path=/m.so",
                "not supported",
            ),
            ("pkcs11:token=%zz?module-path=/m.so", "percent-encoding"),
        ] {
            let e = uri.parse::<KeySource>().unwrap_err();
            assert!(e.contains(what), "{uri}: {e}");
        }
    }
}
