//! `courier show-root`: the factory's root metadata, printed like `fioctl keys tuf show-root`
//! (canonical JSON, members sorted, indented by two spaces).

use sha2::{Digest, Sha256};
use shared::canonical;
use shared::metadata::SignedRoot;

use crate::cli::ShowRootArgs;
use crate::error::{CourierError, Result};
use crate::Ctx;

/// `courier show-root`: fetches the current (or a historical) CI or production root and
/// prints it.
pub fn show_root(ctx: &Ctx, args: &ShowRootArgs) -> Result<()> {
    let client = ctx.client()?;
    let flavour = if args.prod { "production" } else { "CI" };
    let bytes = match args.version {
        None => client.root(args.prod)?,
        Some(n) => client.root_version(n, args.prod)?.ok_or_else(|| {
            CourierError::Other(format!(
                "the factory has no {flavour} root version {n} (the server answered 404)"
            ))
        })?,
    };
    if args.fingerprint {
        let root = SignedRoot::from_json(&bytes).map_err(|e| {
            CourierError::Server(format!("the server sent an unreadable {flavour} root: {e}"))
        })?;
        ctx.out.line(&format!(
            "{flavour} root version {}: {}",
            root.signed.version,
            root_fingerprint(&root)?
        ));
        return Ok(());
    }
    let pretty = canonical::to_pretty(&bytes).map_err(|e| {
        CourierError::Server(format!(
            "the server sent a {flavour} root that is not valid JSON: {e}"
        ))
    })?;
    ctx.out.line(&pretty);
    Ok(())
}

/// The human fingerprint of a root, the same the signer shows when pinning it: SHA-256 of the
/// canonical `signed` bytes as sixteen space-separated groups of four hex digits.
pub fn root_fingerprint(root: &SignedRoot) -> Result<String> {
    let bytes = root
        .canonical_signed()
        .map_err(|e| CourierError::Server(format!("cannot encode the root: {e}")))?;
    let hex = hex::encode(Sha256::digest(&bytes));
    Ok(hex
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_grouped_sha256_of_signed() {
        let root = shared::test_support::RootBuilder::new(1).unsigned();
        let fp = root_fingerprint(&root).unwrap();
        let want = hex::encode(Sha256::digest(root.canonical_signed().unwrap()));
        assert_eq!(fp.replace(' ', ""), want);
        assert_eq!(fp.split(' ').count(), 16);
    }
}
