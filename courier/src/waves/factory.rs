//! What the factory serves that waves are built from and checked against: the offline
//! targets keys of its current root (fioctl's rule), the production targets of a tag, the
//! draft `waves init` builds from them now, and how many of the production root's
//! required signatures a wave carries. Shared by the wave requests ([`super::request`]) and
//! `waves push` ([`super::push`]).

use shared::keys::{KeyId, PublicKey};
use shared::metadata::{Role, SignedRoot, SignedTargets};
use shared::verify;

use super::build::{build_wave_targets, WaveDraft, WaveRequest};
use crate::api::Client;
use crate::error::{CourierError, Result};

/// The candidate offline targets keys of a root: targets keys whose public value differs
/// from the online targets key (fioctl's rule, byte-equal comparison).
pub fn offline_targets_keys(root: &SignedRoot, online_pub: &[u8]) -> Result<Vec<KeyId>> {
    let online = PublicKey::from_json(online_pub).map_err(|e| {
        CourierError::Server(format!("the server's ci-targets.pub is unreadable: {e}"))
    })?;
    Ok(root
        .signed
        .role_keyids(Role::Targets)
        .iter()
        .filter(|id| {
            root.signed
                .keys
                .get(*id)
                .is_some_and(|k| k.public() != online.public())
        })
        .cloned()
        .collect())
}

/// The factory's current CI root and its offline targets keys (fioctl's rule, see
/// [`offline_targets_keys`]).
pub fn current_offline_targets_keys(client: &Client) -> Result<(SignedRoot, Vec<KeyId>)> {
    let root = SignedRoot::from_json(&client.root(false)?)
        .map_err(|e| CourierError::Server(format!("the current root is unreadable: {e}")))?;
    let online = client.ci_targets_pub()?;
    let offline = offline_targets_keys(&root, &online)?;
    Ok((root, offline))
}

/// The production targets of `tag`, or `None` when it has none (404).
pub fn current_prod_targets(client: &Client, tag: &str) -> Result<Option<SignedTargets>> {
    client
        .prod_targets(&[tag.to_string()])?
        .and_then(|m| {
            m.get(tag)
                .map(|raw| SignedTargets::from_json(raw.get().as_bytes()))
        })
        .transpose()
        .map_err(|e| {
            CourierError::Server(format!(
                "the production targets of {tag:?} are unreadable: {e}"
            ))
        })
}

/// The draft `waves init` builds for `req` from the factory's CI and production targets
/// now; a draft that cannot be built is an error phrased like fioctl's.
pub fn build_draft(client: &Client, req: &WaveRequest) -> Result<WaveDraft> {
    let new_targets = client.targets_of_version(&req.version)?;
    let current = current_prod_targets(client, &req.tag)?;
    build_wave_targets(req, &new_targets, current.as_ref())
        .map_err(|e| CourierError::Other(e.to_string()))
}

/// "signed by N of the T keys the production root requires": the valid signatures `doc`
/// carries by targets keys of the factory's current production root.
pub fn signature_count(client: &Client, doc: &SignedTargets) -> Result<String> {
    let prod = SignedRoot::from_json(&client.root(true)?)
        .map_err(|e| CourierError::Server(format!("the production root is unreadable: {e}")))?;
    let msg = doc
        .canonical_signed()
        .map_err(|e| CourierError::Server(e.to_string()))?;
    let r = verify::signature_report(&prod.signed, Role::Targets, &msg, &doc.signatures);
    Ok(format!(
        "signed by {} of the {} targets keys the production root requires{}",
        r.valid.len(),
        r.threshold,
        if r.satisfied() {
            " (enough to roll out and complete it)"
        } else {
            " (not enough to roll it out or complete it yet)"
        }
    ))
}
