//! Shared fixtures of the `keys_*` integration tests.
//!
//! `RSA_FIXTURE_PEM` is a throw-away RSA-4096 key made with `openssl genrsa -traditional
//! 4096` for these tests only (generating one in a test takes seconds). It protects nothing.

#![allow(dead_code)]

use std::path::Path;

use age::secrecy::SecretString;
use shared::keys::PrivateKey;
use shared::metadata::{Role, SignedRoot};
use shared::test_support::{at, RootBuilder};
use signer::keys::reference::ReferenceRoot;
use signer::keystore::PassphraseSource;

/// A PKCS#1 RSA-4096 private key (test fixture only).
pub const RSA_FIXTURE_PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIJKAIBAAKCAgEAlhwaEaJejvLLiRuwJMAXUtp0PtrIJV0zlV1at3SCsPe+pbZq\nCSIk2M4t1+dfJeiSEfBRaIjQKmffBCIh35WnBN5bzwYYMqIYqAZp+vpCEKI3Ik3Q\nZt0Op4AtWcpCyN74ndqQ33itT8yfE6wr7S68mgzRWkgzBHBxu3l+3uBBX8IYa202\nZI8pLUJsU7VLhQW4KSbcvbDnv+VA7W2Io9QVu3xZbL221lVmGzBmwRrWQQ56Z+VV\nrJlbn6H14tHA8q81I4ebIY99dHWIWyU4o3B5o2vyepUG09GMv9Bg2j6fYa1iKAN4\nM9TJPx9YPggMXziO6cMCA8yV7jsxA5EoNG27rJGoFlIvAeWdC4iWqBD4FThylTiS\nnh1aXMAZnecY7+b7HB4P5mwbuCqCZ+ovOprxOVEnBRBaHsfdQmUgzGJjCCUacCfL\n+72RqxXefXk8VL0A4iirfGrY+pxDfuURL+XR4dFZ8CQLts9Hc1ivRRF+I3dV2WG8\nbx23/o7iPz/HoJ1tx/Qr9FQ7HcReqzxKP9Lu+iLST1mAN+hKpOQq5ia5Q3YYWnUu\nDMMlYHFjKbvSYeHO3hjHJ2PMhukW8q+bXpZr/MhkI77LRmcGf4XAVywV1faXglMm\ngCTjK3NDajNfZEIR8Ts4JKH9b+NHWYTWaPehaMAjhJDGSNe5BZi4TkM8b6kCAwEA\nAQKCAgAkPX4ctkjidaMmg6kDwl2PKv8IIr1R6f23aJ2rb2VTEMj2DINul4/ySNrA\nBpPN3OeRDaY12Nv69O9eedgYOPLlBcMACP5kEQbnX/8LsQospmEttsAi6WktjtBE\nHoT/pnc68wbpcOLUwnfAYd+MCG3Pulr70zT/9B69LoCvEdCuq/dFzkzku7xq+R+a\nmQk1wRL8Wm3OHSziQxipCboEpYImrMeRLX88IUuAsm+IXPCPrc1nEnLb8/1vHYS1\n4UKWRK8NWCKfmFsnN+325VZWfSPczMWyixKmJm/26jnLzvUfOaMaOnY1e0Cn7Osa\ntMo53feA38v3e1fSN3emnw+oErsNeL2RnXHz+6U5/ACwKt4RUb+QfBScmCgfkI02\ngHZf6kqZ27aDg/W7f34xzIXsRkoelvSYaBXEQvAZVGg8SaelMAuVbsO73oWgBqSK\nDUtDORbsMr9QgULr+HF477IX6wx+aIYdjwI1P8/eprhFta1PSqSrWtmaXd96R270\nHpXLqZsQqlfMsjn9qyRd/l3pGRFgFIZmX9tPSGWmr0OH3scWPh2rmbcfGxYEsoTr\npD/HBqj6FlwEArTJl6hOdvoC+RRTp++QBknUDuj/JMqVNlgAA8goaoINWau0UkKw\npbu8lO4a+Sw3VPXOhylzGOb/iezn8MSePytv6yDorWNZf8I5BQKCAQEAyfNsRCqX\nm5UTOyOgezW6wxN/aMzXqbv8MT94cD8rkHVM5ieg2xZf6F6hYhPomck+2V2f49tC\nGjJuUlTeuU7haJbETni2u/wsY3vNWPFE7CcR2Y1V4Tlua920Jueul5mFpKb2cMPX\n7Vr3wlk/vZP/WgcG+EvvlrBb2TGjHf5B+qXx+Lwk2LgY00OUKahFHh+aXeOOB6ve\nZtZYU/rQSnE5zXnsklh2yR9tsx9zJbwgbxenA3h44MJuaV9CqUkQzK4oOdG0jVw6\n3fWQ5CiHZUrHN4M7WClDEPGh2AhUjQHtau4NLrzW5WDCdee/TIGpL+Z7GU3YDtZe\n1r9E4wmN8KfuzQKCAQEAvkjO8cERctpxK2yxSAURSNWibW0sDVOn0JkcabPbEV27\n3MG5TgAXUDFai2VNK+Jxn1jkPhmxSwq3p1JSgKR/V3iynln4SB+rTuIPVaMExom2\nEiLXtnJE1aJb1w7oZYQw8SlL6mrBCNu/3DvX1tlRlZnUzVeLpHabIH0Ws3ZbAEWH\nI8cI7JfS+PoIX62d/ycCYaJBQLdn5fSzQekoyCBMyP//aaDUpDlc5NXKGrnLzE+c\nvDIbN0j7Rm5EFs0LUwBpAot+bss2H+7s7X0RAqq9qDPJxVFFOIZoUjcojqCSnUEO\nbl/IJl5it7+A8Qurk7SB07lzvHwR2GpvixGbd6gMTQKCAQEAsdqMjdgI3v9CCYJN\n0lS2Xxjry2sjv5sL9n9UXV50ymtTxxo9YtVor6evb0XjQpTmod3/c1dk9tdVK3MN\nF5vtjgPBbO6I2DO1EAQ3C86oCWY7JSKA8LJ4mcyN3PmLXH3bIe/c9+CyaJoFuwaI\nyTfu2eV4cPHHVimJKlW5ty92Af1lhc6EkMxJKL3KXYmRHX9tnqRKMF1fp6e78HHi\nQL1Iz7pB63y3WFcycF8RNLliwxPMhZTyt9bkEC7R8W6kue3jBVC3Nwtz2IhtC1La\nMw3RNwV/HRxxsRlslGp5tBlvcw2lVHUAuNAnUlk/s2w5iTLtVJKm5iJLMcsPKvf+\nJmRvPQKCAQAp/6X1hBiW0hICdKYYcE3lVonYPy1m75ztlK3JwtHKXnb1faipx6ld\noNcMR1qmIf/UHOmbr04Lcx0gCDJ/hE86/j/mZZNAUAUejxS1YRrPu1t9W0VjVotM\n394HdJnkti2bPPMtlUxv6RjKwkacfDDepSpr/DOtJCSPIizdhXUGdVIjmm2k0snU\n/FLW01o5E+IZrJdccl6zSbQ7CvxeV4q7Ho3AQahNav/O3kUSawnJWZUNkL2jES+s\n1u+eXLlwI3oJ/sH0MFQM7k5LCLy1avwbYPra21o85KWn59bCzDwwC0jlIazqkxCU\n3+bUzS+clU3GbntWEchajPt7pXI8EdJNAoIBAB0RIbRS1xK/c4H8DMdiclYDyDlW\nch5FKmrjSGUkcTzbBRjrS4EPmN+PR0JGYfSJIfnk0+n9jI4cLSMDqOdLX6YPsH0a\n14y6flFIYeUzSg5DxiXMRvNmZCWudhd0nH7vgKtfpoc5rbms8d1E4xqVanQSuG9S\nntqTv+w34qs/XjWUULTOVCWu3TAR9B/TiBck2bCLo6UA23SemVJQfNBItY8sFIU7\ncmtbul6UIiyz5e7RyjOZVsNnQSjf67dfSuRV/k6AHU4RQSdKlj7AVkwv0fAEySZj\nBC+kVPlCmoYnEQ/mJEn4ZFA3S0eLejniH4mtaak/3nrRfZrzs5LLuJD1/8Q=\n-----END RSA PRIVATE KEY-----\n";

/// The fixture RSA key.
pub fn rsa_key() -> PrivateKey {
    let mut json = Vec::new();
    json.extend_from_slice(b"{\"keytype\":\"RSA\",\"keyval\":{\"private\":");
    shared::canonical::write_string(RSA_FIXTURE_PEM.as_bytes(), &mut json);
    json.extend_from_slice(b"}}");
    PrivateKey::from_json(&json).expect("fixture RSA key parses")
}

/// A deterministic ED25519 key ([`shared::test_support::key`]).
pub fn ed_key(n: u8) -> PrivateKey {
    shared::test_support::key(n)
}

/// A passphrase source for tests (fast scrypt).
pub fn pass(p: &str) -> PassphraseSource {
    PassphraseSource::value(SecretString::from(p)).with_work_factor(10)
}

/// Unix permission bits of `path`.
pub fn mode_of(path: &Path) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        0o600
    }
}

/// A minimal root whose root role lists `root_keys` (each with an owner entry dated
/// 2026-01-02T03:04:05Z), unsigned.
pub fn root_doc(root_keys: &[&PrivateKey], version: u64) -> SignedRoot {
    root_keys
        .iter()
        .fold(
            RootBuilder::new(version).role(Role::Root, root_keys, 1),
            |b, k| b.owner(k, "owner", at("2026-01-02T03:04:05Z")),
        )
        .unsigned()
}

/// [`root_doc`] as JSON text (what `--root` is given).
pub fn root_json(root_keys: &[&PrivateKey], version: u64) -> String {
    String::from_utf8(root_doc(root_keys, version).to_json().unwrap()).unwrap()
}

/// The root `signer keys` compares a tarball with when `--root` names a root listing
/// `root_keys` ([`root_doc`], version 3).
pub fn listed(root_keys: &[&PrivateKey]) -> ReferenceRoot {
    ReferenceRoot {
        source: "root.json".to_string(),
        root: root_doc(root_keys, 3),
        pinned: None,
        memory: None,
    }
}
