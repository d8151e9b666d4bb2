//! Request bundles (what the signer needs) and response bundles (what the courier uploads).
//!
//! Writing a request: read the open transaction and everything the signer needs to check
//! and sign it (root chain, production and wave targets, the encrypted initial root key on
//! the first rotation), build a [`TransferBundle`], write it atomically, keep a copy and a
//! record in the state directory, and print its fingerprint.
//!
//! Pushing a response is careful, in this order, and uploads nothing unless every step
//! passes; it works from any online machine:
//! 1. the file is a valid response bundle for the configured factory, its signer steps are
//!    authenticated (pinned signers), and — when this machine wrote the request — its
//!    request part is byte-identical to the kept copy ([`crate::response`]);
//! 2. every signature in the upload verifies locally (roots against the current and new
//!    root keys, targets against the new production root's targets keys); thresholds are
//!    met (or `--allow-partial`);
//! 3. a response whose roots are already published says "already applied as version N";
//! 4. the request it carries is the factory's live transaction: same status, published and
//!    staged roots, online keys and creation time, the same root chain and production and
//!    wave targets, and the upload is built on the staged drafts — otherwise "stale bundle"
//!    (exit code 5) with how to redo it ([`crate::live`]);
//! 5. then one `PUT`; with `--apply`, apply and read the new root back.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::value::RawValue;
use shared::bundle::{self, Operation, RequestInput, TransferBundle, Upload, Writer};
use shared::keys::{KeyId, PublicKey, Signature};
use shared::metadata::{Role, SignedRoot, SignedTargets, Timestamp};
use shared::verify;

use crate::api::{self, Client};
use crate::cli::{OpArg, PullArgs, PushArgs, WavesInitArgs, WavesSignArgs};
use crate::error::{CourierError, Result};
use crate::live::{self, Freshness};
use crate::response;
use crate::state::{RequestRecord, WaveRecord};
use crate::updates::{self, Txn};
use crate::waves::{self, WaveRequest};
use crate::{out, Ctx};

/// The writer recorded in bundles this courier writes.
pub fn writer() -> Writer {
    Writer::new("courier", env!("CARGO_PKG_VERSION"))
}

fn bundle_err(e: bundle::BundleError) -> CourierError {
    CourierError::Bundle(e.to_string())
}

/// Refuses to overwrite an existing bundle file (checked before any change on the server).
pub fn check_new_file(path: &Path) -> Result<()> {
    if path.exists() {
        return Err(CourierError::Usage(format!(
            "{} already exists; choose another file name (bundles are never overwritten)",
            path.display()
        )));
    }
    Ok(())
}

/// Which documents a request must carry, besides the transaction and the chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DocPlan {
    /// Production targets: `None` = none, `Some(empty)` = all tags, `Some(list)` = these tags.
    pub tags: Option<Vec<String>>,
    /// Whether a 404 for the production targets is an error.
    pub tags_required: bool,
    /// Wave targets: `None` = none, `Some(empty)` = all active waves, `Some(list)` = these.
    pub waves: Option<Vec<String>>,
    /// Whether a 404 for the wave targets is an error.
    pub waves_required: bool,
}

/// A planned request: operations and documents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Operations requested (documents-dependent ones are completed after fetching).
    pub ops: Vec<OpArg>,
    /// Key id for deletions.
    pub keyid: Option<KeyId>,
    /// Threshold for set-threshold.
    pub threshold: Option<u64>,
    /// Documents.
    pub docs: DocPlan,
}

/// Turns the `pull` arguments into a plan, refusing incomplete ones before any request.
pub fn plan_pull(args: &PullArgs) -> Result<Plan> {
    let mut ops = args.ops.clone();
    if ops.is_empty() {
        ops.push(OpArg::SignRoot);
    }
    let mut seen = Vec::new();
    ops.retain(|o| {
        let new = !seen.contains(o);
        seen.push(*o);
        new
    });
    let needs_keyid = ops
        .iter()
        .any(|o| matches!(o, OpArg::DeleteRootKey | OpArg::DeleteTargetsKey));
    let needs_threshold = ops
        .iter()
        .any(|o| matches!(o, OpArg::SetRootThreshold | OpArg::SetTargetsThreshold));
    let keyid = match (&args.keyid, needs_keyid) {
        (Some(k), true) => {
            Some(KeyId::parse(k.trim()).map_err(|e| CourierError::Usage(format!("--keyid: {e}")))?)
        }
        (None, true) => {
            return Err(CourierError::Usage(
                "delete-root-key/delete-targets-key need --keyid".into(),
            ))
        }
        (Some(_), false) => {
            return Err(CourierError::Usage(
                "--keyid is only used with delete-*-key".into(),
            ))
        }
        (None, false) => None,
    };
    if ops
        .iter()
        .filter(|o| matches!(o, OpArg::DeleteRootKey | OpArg::DeleteTargetsKey))
        .count()
        > 1
    {
        return Err(CourierError::Usage(
            "give one delete operation per request (one --keyid)".into(),
        ));
    }
    if ops.contains(&OpArg::SetRootThreshold) && ops.contains(&OpArg::SetTargetsThreshold) {
        return Err(CourierError::Usage(
            "give one set-*-threshold operation per request (one --threshold)".into(),
        ));
    }
    let threshold = match (args.threshold, needs_threshold) {
        (Some(0), true) => {
            return Err(CourierError::Usage("--threshold must be at least 1".into()))
        }
        (Some(n), true) => {
            if ops.contains(&OpArg::SetTargetsThreshold) && n < 2 {
                return Err(CourierError::Usage(format!(
                    "Threshold for TUF Targets must be greater than 2: {n} (production targets need the online key plus at least one offline key)"
                )));
            }
            Some(n)
        }
        (None, true) => {
            return Err(CourierError::Usage(
                "set-*-threshold needs --threshold N".into(),
            ))
        }
        (Some(_), false) => {
            return Err(CourierError::Usage(
                "--threshold is only used with set-*-threshold".into(),
            ))
        }
        (None, false) => None,
    };
    for name in args.tags.iter().chain(&args.waves) {
        bundle::validate_doc_name(name).map_err(CourierError::Usage)?;
    }
    let mut docs = DocPlan::default();
    if ops.contains(&OpArg::RotateTargets) || ops.contains(&OpArg::AddTargetsKey) {
        // fioctl: all production tags and all active waves; 404 = none. A new targets key
        // signs them too (the signer's add-offline-key does): the first offline targets key
        // must, or production targets miss the production threshold and apply is refused.
        docs.tags = Some(Vec::new());
        docs.waves = Some(Vec::new());
    }
    if ops.contains(&OpArg::SignProdTargets) {
        // fioctl's sign-prod-targets selection; 404 is an error there.
        let (tags_given, waves_given) = (!args.tags.is_empty(), !args.waves.is_empty());
        if tags_given || !waves_given {
            docs.tags = Some(args.tags.clone());
            docs.tags_required = true;
        }
        if waves_given || !tags_given {
            docs.waves = Some(args.waves.clone());
            docs.waves_required = waves_given;
        }
    } else if !args.tags.is_empty() || !args.waves.is_empty() {
        return Err(CourierError::Usage(
            "--tags and --waves are only used with --op sign-prod-targets".into(),
        ));
    }
    Ok(Plan {
        ops,
        keyid,
        threshold,
        docs,
    })
}

/// Fetches the root chain `1..=n` as served, with a progress bar.
pub fn fetch_chain(ctx: &Ctx, client: &Client, n: u64) -> Result<Vec<Vec<u8>>> {
    let bar = api::progress_bar(n, "root chain", ctx.verbose);
    let mut chain = Vec::new();
    for v in 1..=n {
        let bytes = client.root_version(v, false)?.ok_or_else(|| {
            CourierError::Server(format!(
                "the server has no CI root version {v} although the current root is version {n}"
            ))
        })?;
        chain.push(bytes);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(chain)
}

/// Checks that the chain ends at the current root and (as an early warning only — trust is
/// decided by the signer) that it verifies from version 1.
fn check_chain(chain: &[Vec<u8>], current: &SignedRoot) -> Result<()> {
    let roots: Vec<SignedRoot> = chain
        .iter()
        .enumerate()
        .map(|(i, b)| {
            SignedRoot::from_json(b).map_err(|e| {
                CourierError::Server(format!(
                    "the server's root version {} is unreadable: {e}",
                    i + 1
                ))
            })
        })
        .collect::<Result<_>>()?;
    let last = roots
        .last()
        .ok_or_else(|| CourierError::Server("the server's root chain is empty".into()))?;
    if last.signed != current.signed {
        return Err(CourierError::Server(format!(
            "the server's root version {} differs from the current root in the transaction; try again",
            last.signed.version
        )));
    }
    if let Err(e) = verify::verify_chain(&roots[0], &roots).map(|_| ()) {
        eprintln!(
            "warning: the server's root chain does not verify ({e}); the signer will refuse it"
        );
    }
    Ok(())
}

/// Fetches production (or wave) targets documents. `None` in the plan fetches nothing.
fn fetch_docs(
    client: &Client,
    names: &Option<Vec<String>>,
    required: bool,
    waves: bool,
) -> Result<BTreeMap<String, Vec<u8>>> {
    let Some(names) = names else {
        return Ok(BTreeMap::new());
    };
    let what = if waves {
        "wave targets"
    } else {
        "production targets"
    };
    let answer = if waves {
        client.wave_targets(names)?
    } else {
        client.prod_targets(names)?
    };
    let map = match answer {
        Some(m) => m,
        None if required => {
            return Err(CourierError::Other(format!(
                "Failed to fetch {what}: the factory has none{}",
                if names.is_empty() {
                    String::new()
                } else {
                    format!(" for {}", names.join(","))
                }
            )))
        }
        None => BTreeMap::new(),
    };
    for n in names {
        if !map.contains_key(n) {
            return Err(CourierError::Other(format!(
                "the factory has no {what} for {n:?}"
            )));
        }
    }
    let mut out = BTreeMap::new();
    for (name, raw) in map {
        if !names.is_empty() && !names.contains(&name) {
            continue;
        }
        bundle::validate_doc_name(&name).map_err(|e| {
            CourierError::Server(format!("the server sent {what} with an unusable name: {e}"))
        })?;
        SignedTargets::check_json(raw.get().as_bytes()).map_err(|e| {
            CourierError::Server(format!("the server sent unreadable {what} {name:?}: {e}"))
        })?;
        // The document text as served, without copying it.
        out.insert(name, Box::<str>::from(raw).into_string().into_bytes());
    }
    Ok(out)
}

fn online_key_roles(txn: &Txn) -> Vec<Role> {
    let mut roles = Vec::new();
    for role in [Role::Targets, Role::Snapshot, Role::Timestamp] {
        let cur = txn.state.current.online_keys.get(role.as_str());
        let upd = txn.state.updated.online_keys.get(role.as_str());
        if upd.is_some() && cur != upd {
            roles.push(role);
        }
    }
    roles
}

/// Gathers everything for a root-updates request and returns the input plus a summary.
pub fn gather_request(ctx: &Ctx, client: &Client, plan: &Plan, txid: &str) -> Result<RequestInput> {
    let txn = Txn::fetch(client)?;
    txn.require_started()?;
    let factory = client.factory().to_string();
    let mut ops: Vec<Operation> = Vec::new();
    for op in &plan.ops {
        match op {
            OpArg::FirstTimeRootRotation => ops.push(Operation::FirstTimeRootRotation),
            OpArg::RotateRoot => ops.push(Operation::RootRotation),
            OpArg::RotateTargets => ops.push(Operation::TargetsRotation),
            OpArg::AddRootKey => ops.push(Operation::AddOfflineKey {
                role: Role::Root,
                keyid: None,
            }),
            OpArg::AddTargetsKey => ops.push(Operation::AddOfflineKey {
                role: Role::Targets,
                keyid: None,
            }),
            OpArg::DeleteRootKey | OpArg::DeleteTargetsKey => {
                let role = if *op == OpArg::DeleteRootKey {
                    Role::Root
                } else {
                    Role::Targets
                };
                let Some(keyid) = plan.keyid.clone() else {
                    return Err(CourierError::Usage(
                        "delete-root-key/delete-targets-key need --keyid".into(),
                    ));
                };
                let staged = txn.updated_ci.as_ref().unwrap_or(&txn.current_ci);
                if !staged.signed.role_keyids(role).contains(&keyid) {
                    return Err(CourierError::Usage(format!(
                        "Key ID {keyid} not found in TUF {role} role keys: {:?}",
                        staged
                            .signed
                            .role_keyids(role)
                            .iter()
                            .map(|k| k.as_str())
                            .collect::<Vec<_>>()
                    )));
                }
                if role == Role::Targets
                    && txn.state.updated.online_keys.get("targets") == Some(&keyid.to_string())
                {
                    return Err(CourierError::Usage(
                        "It is not allowed to delete an online TUF Targets key".into(),
                    ));
                }
                ops.push(Operation::DeleteOfflineKey { role, keyid });
            }
            OpArg::SetRootThreshold | OpArg::SetTargetsThreshold => {
                ops.push(Operation::SetThreshold {
                    role: if *op == OpArg::SetRootThreshold {
                        Role::Root
                    } else {
                        Role::Targets
                    },
                    threshold: plan.threshold.unwrap_or(1),
                })
            }
            OpArg::SignRoot => ops.push(Operation::SignRoot),
            OpArg::SignProdTargets => {
                if txn.updated_prod.is_none() {
                    return Err(CourierError::Other(
                        "Please make changes to your Factory TUF root. For example, add a new offline TUF Targets \
                         key before signing production Targets with it."
                            .into(),
                    ));
                }
            }
        }
    }
    if txn
        .state
        .updated
        .online_keys
        .get("targets")
        .is_none_or(|k| k.is_empty())
        && plan.ops.iter().any(|o| {
            matches!(
                o,
                OpArg::RotateTargets
                    | OpArg::AddTargetsKey
                    | OpArg::DeleteTargetsKey
                    | OpArg::SignProdTargets
            )
        })
    {
        return Err(CourierError::Server(
            "Unable to find online Target key for Factory".into(),
        ));
    }
    let rotated = online_key_roles(&txn);
    if !rotated.is_empty() {
        ops.push(Operation::RotateOnlineKey { roles: rotated });
    }
    // First-time: the transaction must be one, and the encrypted key must be here.
    let first_time = plan.ops.contains(&OpArg::FirstTimeRootRotation);
    let first_root_secret = if first_time {
        if !txn.state.first_time {
            return Err(CourierError::Other(
                "the open transaction is not a first-time transaction; use --op rotate-root".into(),
            ));
        }
        let (sealed, public) = ctx.state().first_root(&factory)?.ok_or_else(|| {
            CourierError::Other(
                "this courier holds no initial root key for the factory (the first-time transaction was started \
                 elsewhere, or its key was already used). Cancel it with `courier updates cancel` and start again \
                 with `courier rotate-offline-key --role root --first-time --bundle FILE`."
                    .into(),
            )
        })?;
        let public = PublicKey::from_json(&public).map_err(|e| {
            CourierError::Other(format!(
                "the kept initial root public key is unreadable: {e}"
            ))
        })?;
        let root_keys = txn.current_ci.signed.role_keyids(Role::Root);
        let matches = root_keys
            .iter()
            .filter_map(|id| txn.current_ci.signed.keys.get(id))
            .any(|k| k.same_key(&public));
        if !matches {
            return Err(CourierError::Other(
                "the kept initial root key is not the current root key of the factory; cancel the transaction and \
                 start again"
                    .into(),
            ));
        }
        Some(sealed)
    } else {
        None
    };
    let n = txn.current_ci.signed.version;
    let chain = fetch_chain(ctx, client, n)?;
    check_chain(&chain, &txn.current_ci)?;
    let prod_targets = fetch_docs(client, &plan.docs.tags, plan.docs.tags_required, false)?;
    let wave_docs = fetch_docs(client, &plan.docs.waves, plan.docs.waves_required, true)?;
    if plan.ops.contains(&OpArg::SignProdTargets) {
        if !prod_targets.is_empty() {
            ops.push(Operation::SignProdTargets {
                tags: prod_targets.keys().cloned().collect(),
            });
        }
        for name in wave_docs.keys() {
            ops.push(Operation::SignWave { name: name.clone() });
        }
        if prod_targets.is_empty() && wave_docs.is_empty() {
            return Err(CourierError::Other(
                "there are no production or wave targets to sign".into(),
            ));
        }
    }
    if ops.is_empty() {
        ops.push(Operation::SignRoot);
    }
    Ok(RequestInput {
        factory,
        txid: txid.to_string(),
        writer: writer(),
        created: Timestamp::now(),
        operations: ops,
        transaction: txn.raw.clone(),
        chain,
        prod_targets,
        waves: wave_docs,
        first_root_secret,
    })
}

/// Builds, writes, keeps and records a request bundle; prints its fingerprint.
pub fn write_request(
    ctx: &Ctx,
    input: RequestInput,
    path: &Path,
    purpose: &str,
    wave: Option<WaveRecord>,
) -> Result<TransferBundle> {
    let b = TransferBundle::new_request(input).map_err(bundle_err)?;
    let bytes = b.encoded(bundle::WRITE_COMPRESSION).map_err(bundle_err)?;
    check_new_file(path)?;
    let store = ctx.state();
    let digest = b.digest().to_string();
    // Keep the copy and the record first: a bundle on disk that push would not accept is useless.
    store.save_request_bundle(&digest, &bytes)?;
    store.record_request(&RequestRecord {
        digest: digest.clone(),
        fingerprint: b.fingerprint(),
        factory: b.factory().to_string(),
        txid: b.txid().to_string(),
        purpose: purpose.to_string(),
        operations: b.operations().iter().map(|o| o.to_string()).collect(),
        path: path.display().to_string(),
        created_at: Timestamp::now().to_string(),
        wave,
    })?;
    shared::fsutil::write_atomic(path, &bytes, bundle::FILE_MODE)
        .map_err(|e| CourierError::Other(format!("cannot write {}: {e}", path.display())))?;
    out(&format!("Wrote request bundle {}", path.display()));
    out(&format!("  factory:     {}", b.factory()));
    if !b.txid().is_empty() {
        out(&format!("  transaction: {}", b.txid()));
    }
    for op in b.operations() {
        out(&format!("  operation:   {op}"));
    }
    let tags = b.prod_targets_bytes();
    if !tags.is_empty() {
        out(&format!(
            "  production targets: {}",
            tags.keys().copied().collect::<Vec<_>>().join(", ")
        ));
    }
    let w = b.waves_bytes();
    if !w.is_empty() {
        out(&format!(
            "  wave targets:       {}",
            w.keys().copied().collect::<Vec<_>>().join(", ")
        ));
    }
    if b.first_root_secret().is_some() {
        out("  initial root key:   included, encrypted to the signer's age recipient");
    }
    if let Some(current) = b.chain().ok().and_then(|c| c.last().cloned()) {
        out(&format!(
            "  current root:       version {}, fingerprint {}",
            current.signed.version,
            crate::root::root_fingerprint(&current)?
        ));
    }
    out(&format!("Fingerprint: {}", b.fingerprint()));
    out("Check that the signer shows the same fingerprint before signing.");
    Ok(b)
}

/// `courier updates pull`.
pub fn pull(ctx: &Ctx, args: &PullArgs) -> Result<()> {
    let mut plan = plan_pull(args)?;
    check_new_file(&args.bundle)?;
    let client = ctx.client()?;
    if args.ops.is_empty() {
        // In a first-time transaction whose initial key this courier holds, that is the job.
        let txn = Txn::fetch(&client)?;
        if txn.state.first_time && ctx.state().first_root(client.factory())?.is_some() {
            plan.ops = vec![OpArg::FirstTimeRootRotation];
        }
    }
    let txid = updates::resolve_txid(
        ctx,
        &crate::cli::TxidArg {
            txid: args.txid.clone(),
        },
    )?;
    let input = gather_request(ctx, &client, &plan, &txid)?;
    write_request(ctx, input, &args.bundle, "root-updates", None)?;
    Ok(())
}

/// Verifies a new root's signatures against the previous root's and its own root keys.
/// Every signature must verify; returns whether both thresholds are met.
pub fn verify_new_root(new: &SignedRoot, prev: &SignedRoot, what: &str) -> Result<bool> {
    let expected = prev.signed.version + 1;
    if new.signed.version != expected {
        return Err(CourierError::Verify(format!(
            "{what} has version {}, expected {expected}",
            new.signed.version
        )));
    }
    verify::check_key_ids(&new.signed, what).map_err(|e| CourierError::Verify(e.to_string()))?;
    let msg = new
        .canonical_signed()
        .map_err(|e| CourierError::Verify(format!("{what}: {e}")))?;
    for sig in &new.signatures {
        let listed = prev.signed.role_keyids(Role::Root).contains(&sig.keyid)
            || new.signed.role_keyids(Role::Root).contains(&sig.keyid);
        let key = new
            .signed
            .keys
            .get(&sig.keyid)
            .or_else(|| prev.signed.keys.get(&sig.keyid));
        match (listed, key) {
            (true, Some(key)) => key.verify(&msg, sig).map_err(|e| {
                CourierError::Verify(format!("{what}: signature by {}: {e}", sig.keyid.short()))
            })?,
            _ => {
                return Err(CourierError::Verify(format!(
                    "{what}: signature by {} is not from a root key of v{} or v{}",
                    sig.keyid.short(),
                    prev.signed.version,
                    new.signed.version
                )))
            }
        }
    }
    let a = verify::signature_report(&prev.signed, Role::Root, &msg, &new.signatures);
    let b = verify::signature_report(&new.signed, Role::Root, &msg, &new.signatures);
    Ok(a.satisfied() && b.satisfied())
}

/// Verifies new targets signatures over a document (`msg`: its canonical `signed` bytes,
/// `carried`: the signatures it carries) against the new production root; every given
/// signature must verify; returns whether the document then meets the threshold.
pub fn verify_targets_sigs(
    msg: &[u8],
    carried: &[Signature],
    sigs: &[Signature],
    prod: &SignedRoot,
    what: &str,
) -> Result<bool> {
    if sigs.is_empty() {
        return Err(CourierError::Verify(format!(
            "{what}: the upload has an empty signature list"
        )));
    }
    for sig in sigs {
        let key = prod
            .signed
            .role_keyids(Role::Targets)
            .contains(&sig.keyid)
            .then(|| prod.signed.keys.get(&sig.keyid))
            .flatten()
            .ok_or_else(|| {
                CourierError::Verify(format!(
                    "{what}: signature by {} is not from a targets key of the new production root",
                    sig.keyid.short()
                ))
            })?;
        key.verify(msg, sig).map_err(|e| {
            CourierError::Verify(format!("{what}: signature by {}: {e}", sig.keyid.short()))
        })?;
    }
    // Merge the signatures only (the same rule as `Signed::add_signature`), not the document.
    let mut merged = carried.to_vec();
    for s in sigs {
        merged.retain(|x| x.keyid != s.keyid);
        merged.push(s.clone());
    }
    Ok(verify::signature_report(&prod.signed, Role::Targets, msg, &merged).satisfied())
}

/// Local verification of a response's upload against its request. Returns the list of
/// documents that do not yet meet their thresholds.
pub fn verify_upload(request: &TransferBundle, upload: &Upload) -> Result<Vec<String>> {
    let tx = request.transaction().map_err(bundle_err)?;
    let current = tx
        .current
        .as_ref()
        .ok_or_else(|| CourierError::Bundle("the request has no current roots".into()))?;
    let cur_ci = current
        .ci_root()
        .map_err(bundle_err)?
        .ok_or_else(|| CourierError::Bundle("the request has no current CI root".into()))?;
    let cur_prod = current
        .prod_root()
        .map_err(bundle_err)?
        .unwrap_or_else(|| cur_ci.clone());
    let mut incomplete = Vec::new();
    if !verify_new_root(&upload.ci_root, &cur_ci, "the new CI root")? {
        incomplete.push("CI root".to_string());
    }
    if !verify_new_root(&upload.prod_root, &cur_prod, "the new production root")? {
        incomplete.push("production root".to_string());
    }
    verify::verify_ci_prod_pair(&upload.ci_root.signed, &upload.prod_root.signed)
        .map_err(|e| CourierError::Verify(e.to_string()))?;
    // The signatures a (validated) targets member carries, without parsing `signed`.
    #[derive(serde::Deserialize)]
    struct Carried {
        #[serde(default)]
        signatures: Option<Vec<Signature>>,
    }
    for (kind, sigs, dir) in [
        (
            "production targets",
            &upload.targets_signatures,
            bundle::PROD_TARGETS_DIR,
        ),
        ("wave targets", &upload.waves_signatures, bundle::WAVES_DIR),
    ] {
        for (name, list) in sigs {
            let member = format!("{dir}{name}.json");
            let data = request.member(&member).ok_or_else(|| {
                CourierError::Verify(format!("{kind} {name:?} are not in the request"))
            })?;
            let what = format!("{kind} {name:?}");
            let carried: Carried = serde_json::from_slice(data)
                .map_err(|e| CourierError::Verify(format!("{what}: {e}")))?;
            let (msg, _) = request
                .targets_signed(&member)
                .map_err(|e| CourierError::Verify(format!("{what}: {e}")))?;
            let carried = carried.signatures.unwrap_or_default();
            if !verify_targets_sigs(&msg, &carried, list, &upload.prod_root, &what)? {
                incomplete.push(format!("{kind} {name}"));
            }
        }
    }
    Ok(incomplete)
}

/// `courier updates push`.
pub fn push(ctx: &Ctx, args: &PushArgs) -> Result<()> {
    let client = ctx.client()?;
    let response::Response {
        bundle: resp,
        local,
    } = response::load(ctx, &args.file, client.factory())?;
    refuse_wave_response(&args.file, &resp, local.record())?;
    let upload = resp
        .upload()
        .ok_or_else(|| CourierError::Bundle("the response carries no upload".into()))?
        .clone();
    // The response carries the request it answers: its members are what the signer saw.
    let incomplete = verify_upload(&resp, &upload)?;
    out("  every signature verifies locally");
    if !incomplete.is_empty() {
        let list = incomplete.join(", ");
        if !args.allow_partial {
            return Err(CourierError::Verify(format!(
                "not enough signatures yet for: {list}. Have the other key holders sign (and `signer combine` the \
                 responses), or upload anyway with --allow-partial"
            )));
        }
        if args.apply {
            return Err(CourierError::Usage(format!(
                "--apply with --allow-partial: {list} would not pass the server's checks; push without --apply"
            )));
        }
        eprintln!("warning: uploading although these lack signatures: {list}");
    }
    let live = Txn::fetch(&client)?;
    if let Some(applied) = live::already_applied(&client, &live, &upload)? {
        out(&format!(
            "This response was already applied as version {}{}; nothing was uploaded.",
            applied.version,
            if applied.current > applied.version {
                format!(" (the factory's root is now version {})", applied.current)
            } else {
                String::new()
            }
        ));
        return Ok(());
    }
    let freshness = live::check_fresh(&resp, &live, &upload)?;
    live::check_drafts(&live, &upload)?;
    live::check_chain(ctx, &client, &resp, &live)?;
    live::check_docs(&client, &resp)?;
    out("  it answers the factory's live transaction (roots, staged drafts, root chain, targets)");
    match freshness {
        Freshness::AlreadyUploaded
            if upload.targets_signatures.is_empty() && upload.waves_signatures.is_empty() =>
        {
            out("This response was already uploaded; nothing to upload again.");
        }
        _ => {
            let body =
                serde_json::to_vec(&upload).map_err(|e| CourierError::Other(e.to_string()))?;
            out("= Uploading the signed TUF root");
            if let Err(e) = client.put_updates(&body) {
                put_failure(&client, e, &upload, &live)?;
                eprintln!("note: the answer to the upload was lost, but the server holds the uploaded roots");
            }
            out(&format!(
                "Uploaded: CI root v{} and production root v{}{}{}.",
                upload.ci_root.signed.version,
                upload.prod_root.signed.version,
                if upload.targets_signatures.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", signatures for production targets {}",
                        upload
                            .targets_signatures
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(",")
                    )
                },
                if upload.waves_signatures.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", signatures for waves {}",
                        upload
                            .waves_signatures
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(",")
                    )
                }
            ));
        }
    }
    if args.apply {
        out("= Applying staged TUF root changes");
        updates::apply(ctx, &client, &upload.txid)?;
    } else {
        out("Review with `courier updates review`, then apply with `courier updates apply`.");
    }
    Ok(())
}

/// The wave a response answers when it can only be a `courier waves init`/`waves sign`
/// response: its record says so, or (not written here) it asks for one wave signature only
/// and was made without an open transaction or for a wave that does not exist yet.
fn refuse_wave_response(
    file: &Path,
    resp: &TransferBundle,
    record: Option<&RequestRecord>,
) -> Result<()> {
    let wave = match record {
        Some(r) => r
            .purpose
            .starts_with("wave")
            .then(|| waves::wave_of(resp))
            .flatten(),
        None => waves::wave_of(resp).filter(|name| {
            let no_txn = resp
                .transaction()
                .is_ok_and(|t| t.status != api::status::STARTED);
            let new_wave = resp
                .waves()
                .ok()
                .and_then(|w| w.get(name).map(|d| d.signatures.is_empty()))
                .unwrap_or(false);
            no_txn || new_wave
        }),
    };
    match wave {
        Some(name) => Err(CourierError::Usage(format!(
            "{} answers a wave request (wave {name}); push it with `courier waves push {}`",
            file.display(),
            file.display()
        ))),
        None => Ok(()),
    }
}

/// Explains a failed PUT: a refusal changed nothing; otherwise re-reads the state to tell
/// whether the upload took effect (`Ok` when it did: the answer was lost).
fn put_failure(client: &Client, e: api::ApiError, upload: &Upload, before: &Txn) -> Result<()> {
    if matches!(e.status(), Some(s) if s < 500) {
        return Err(CourierError::from(e)
            .context("the server refused the upload; the transaction is unchanged"));
    }
    let roots_change = before.updated_ci.as_ref() != Some(&upload.ci_root)
        || before.updated_prod.as_ref() != Some(&upload.prod_root);
    match Txn::fetch(client) {
        Ok(live)
            if roots_change
                && live.updated_ci.as_ref() == Some(&upload.ci_root)
                && live.updated_prod.as_ref() == Some(&upload.prod_root) =>
        {
            Ok(())
        }
        Ok(_) => Err(CourierError::from(e)
            .context("the upload did not take effect; the transaction is unchanged; run the same push again")),
        Err(_) => Err(CourierError::Uncertain(format!(
            "the upload failed ({e}) and the server cannot be reached to tell whether it took effect; check with \
             `courier updates status`, then run the same push again (it will not upload twice)"
        ))),
    }
}

/// The body of `POST waves/`, in Go's member order.
#[derive(Serialize)]
struct WaveCreate<'a> {
    name: &'a str,
    version: &'a str,
    tag: &'a str,
    targets: WaveTargets<'a>,
}

#[derive(Serialize)]
struct WaveTargets<'a> {
    signed: &'a RawValue,
    signatures: &'a [Signature],
}

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

fn wave_request(args: &WavesInitArgs) -> Result<WaveRequest> {
    bundle::validate_doc_name(&args.name)
        .map_err(|e| CourierError::Usage(format!("wave name {e}")))?;
    waves::parse_version(&args.version).map_err(|e| CourierError::Usage(e.to_string()))?;
    let expires = waves::expiry(
        time::OffsetDateTime::now_utc(),
        args.expires_days,
        args.expires_at.as_deref(),
    )
    .map_err(|e| CourierError::Usage(e.to_string()))?;
    if expires <= Timestamp::now() {
        eprintln!("warning: the wave targets expire at {expires}, which is not in the future");
    }
    Ok(WaveRequest {
        name: args.name.clone(),
        version: args.version.clone(),
        tag: args.tag.clone(),
        expires,
        prune: args.prune.clone(),
        source_tag: args.source_tag.clone(),
    })
}

/// The factory's current CI root and its offline targets keys (fioctl's rule, see
/// [`offline_targets_keys`]).
fn current_offline_targets_keys(client: &Client) -> Result<(SignedRoot, Vec<KeyId>)> {
    let root = SignedRoot::from_json(&client.root(false)?)
        .map_err(|e| CourierError::Server(format!("the current root is unreadable: {e}")))?;
    let online = client.ci_targets_pub()?;
    let offline = offline_targets_keys(&root, &online)?;
    Ok((root, offline))
}

/// What every wave request carries besides the wave: the transaction snapshot and the root
/// chain. Refuses a factory without an offline targets key to sign with (fioctl checks the
/// same).
fn wave_request_context(ctx: &Ctx, client: &Client) -> Result<(Txn, Vec<Vec<u8>>)> {
    if current_offline_targets_keys(client)?.1.is_empty() {
        return Err(CourierError::Other(
            "Root role is not configured to sign Targets offline. Please, run `courier rotate-offline-key \
             --role targets` in order to create offline Targets keys."
                .into(),
        ));
    }
    let txn = Txn::fetch(client)?;
    let chain = fetch_chain(ctx, client, txn.current_ci.signed.version)?;
    check_chain(&chain, &txn.current_ci)?;
    Ok((txn, chain))
}

/// The production targets of `tag`, or `None` when it has none (404).
fn current_prod_targets(client: &Client, tag: &str) -> Result<Option<SignedTargets>> {
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

fn build_draft(client: &Client, req: &WaveRequest) -> Result<waves::WaveDraft> {
    let new_targets = client.targets_of_version(&req.version)?;
    let current = current_prod_targets(client, &req.tag)?;
    waves::build_wave_targets(req, &new_targets, current.as_ref())
        .map_err(|e| CourierError::Other(e.to_string()))
}

/// `courier waves init`.
pub fn wave_init(ctx: &Ctx, args: &WavesInitArgs) -> Result<()> {
    let req = wave_request(args)?;
    if let Some(path) = &args.bundle {
        if !args.dry_run {
            check_new_file(path)?;
        }
    }
    let client = ctx.client()?;
    let draft = build_draft(&client, &req)?;
    let doc = SignedTargets {
        signatures: Vec::new(),
        signed: draft.signed.clone(),
        extra: BTreeMap::new(),
    };
    if args.dry_run {
        let signed = RawValue::from_string(String::from_utf8_lossy(&draft.canonical).into_owned())
            .map_err(|e| CourierError::Other(e.to_string()))?;
        let body = WaveCreate {
            name: &req.name,
            version: &req.version,
            tag: &req.tag,
            targets: WaveTargets {
                signed: &signed,
                signatures: &[],
            },
        };
        let bytes = serde_json::to_vec(&body).map_err(|e| CourierError::Other(e.to_string()))?;
        out(&shared::canonical::to_pretty(&bytes)
            .map_err(|e| CourierError::Other(e.to_string()))?);
        return Ok(());
    }
    let Some(path) = &args.bundle else {
        return Err(CourierError::Usage(
            "--bundle FILE is required without --dry-run".into(),
        ));
    };
    let (txn, chain) = wave_request_context(ctx, &client)?;
    let doc_bytes = doc
        .to_canonical()
        .map_err(|e| CourierError::Other(e.to_string()))?;
    let input = RequestInput {
        factory: client.factory().to_string(),
        txid: String::new(),
        writer: writer(),
        created: Timestamp::now(),
        operations: vec![Operation::SignWave {
            name: req.name.clone(),
        }],
        transaction: txn.raw.clone(),
        chain,
        prod_targets: BTreeMap::new(),
        waves: BTreeMap::from([(req.name.clone(), doc_bytes)]),
        first_root_secret: None,
    };
    let record = WaveRecord {
        name: req.name.clone(),
        version: req.version.clone(),
        tag: req.tag.clone(),
        expires: req.expires.to_string(),
        prune: req.prune.clone(),
        source_tag: req.source_tag.clone(),
        has_static_deltas: draft.has_static_deltas,
    };
    out(&format!(
        "Wave {} for version {} and tag {}: {} target(s), {} new, expires {}",
        req.name,
        req.version,
        req.tag,
        draft.signed.targets.len(),
        draft.added.len(),
        req.expires
    ));
    write_request(ctx, input, path, "wave", Some(record))?;
    out(&format!(
        "Sign it offline (`signer sign-wave {} ...`), then create the wave with `courier waves push RESPONSE`.",
        req.name
    ));
    Ok(())
}

/// `courier waves sign`: a request bundle to sign an existing wave's targets with one more
/// offline targets key.
pub fn wave_sign(ctx: &Ctx, args: &WavesSignArgs) -> Result<()> {
    bundle::validate_doc_name(&args.name)
        .map_err(|e| CourierError::Usage(format!("wave name {e}")))?;
    check_new_file(&args.bundle)?;
    let client = ctx.client()?;
    let wave = client.wave(&args.name)?.ok_or_else(|| {
        CourierError::Other(format!(
            "the factory has no wave named {:?} (see `courier waves list`)",
            args.name
        ))
    })?;
    if wave.status != "active" {
        return Err(CourierError::Other(format!(
            "wave {} is {}: only an active wave can be signed",
            args.name,
            api::one_line(&wave.status)
        )));
    }
    let doc = SignedTargets::from_json(&wave.targets).map_err(|e| {
        CourierError::Server(format!(
            "the targets of wave {} are unreadable: {e}",
            args.name
        ))
    })?;
    let (txn, chain) = wave_request_context(ctx, &client)?;
    out(&format!(
        "Wave {} for version {} and tag {}: {} target(s), expires {}; {}",
        args.name,
        api::one_line(&wave.version),
        api::one_line(&wave.tag),
        doc.signed.targets.len(),
        doc.signed.expires,
        signature_count(&client, &doc)?
    ));
    let input = RequestInput {
        factory: client.factory().to_string(),
        txid: String::new(),
        writer: writer(),
        created: Timestamp::now(),
        operations: vec![Operation::SignWave {
            name: args.name.clone(),
        }],
        transaction: txn.raw.clone(),
        chain,
        prod_targets: BTreeMap::new(),
        waves: BTreeMap::from([(args.name.clone(), wave.targets)]),
        first_root_secret: None,
    };
    write_request(ctx, input, &args.bundle, "wave-sign", None)?;
    out(&format!(
        "Sign it offline with an offline targets key that has not signed the wave yet (`signer sign-wave {} \
         --targets-keys FILE ...`), then push the response with `courier waves push RESPONSE`.",
        args.name
    ));
    Ok(())
}

/// "signed by N of the T keys the production root requires": the valid signatures `doc`
/// carries by targets keys of the factory's current production root.
fn signature_count(client: &Client, doc: &SignedTargets) -> Result<String> {
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

/// `courier waves push`: creates the wave of a `waves init` response, or adds the
/// signatures of a `waves sign` response to the existing wave. Works without the local copy
/// of the request: everything is checked against the factory's data now.
pub fn wave_push(ctx: &Ctx, file: &Path) -> Result<()> {
    let client = ctx.client()?;
    let response::Response {
        bundle: resp,
        local,
    } = response::load(ctx, file, client.factory())?;
    let name = waves::wave_of(&resp)
        .filter(|_| local.record().is_none_or(|r| r.purpose.starts_with("wave")))
        .ok_or_else(|| {
            CourierError::Usage(format!(
                "{} does not answer a wave request; upload it with `courier updates push {}`",
                file.display(),
                file.display()
            ))
        })?;
    let upload = resp
        .upload()
        .ok_or_else(|| CourierError::Bundle("the response carries no upload".into()))?;
    let sigs = upload
        .waves_signatures
        .get(&name)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            CourierError::Bundle(format!("the response has no signature for wave {name:?}"))
        })?;
    let member = format!("{}{name}.json", bundle::WAVES_DIR);
    let (draft, _) = resp.targets_signed(&member).map_err(bundle_err)?;
    let doc = resp
        .waves()
        .map_err(bundle_err)?
        .remove(&name)
        .ok_or_else(|| CourierError::Bundle(format!("the response has no {member}")))?;
    // The signing keys: offline targets keys of the factory's current CI root (fioctl's rule).
    let (root, offline) = current_offline_targets_keys(&client)?;
    let mut good = Vec::new();
    for sig in sigs {
        if !offline.contains(&sig.keyid) {
            return Err(CourierError::stale(format!(
                "wave signature by {} is not from an offline targets key of the current root (v{})",
                sig.keyid.short(),
                root.signed.version
            )));
        }
        let key = root.signed.keys.get(&sig.keyid).ok_or_else(|| {
            CourierError::Verify(format!(
                "key {} is not in the current root",
                sig.keyid.short()
            ))
        })?;
        key.verify(&draft, sig).map_err(|e| {
            CourierError::Verify(format!("wave signature by {}: {e}", sig.keyid.short()))
        })?;
        good.push(sig.clone());
    }
    out("  every signature verifies locally");
    match client.wave(&name)? {
        Some(live) => add_wave_signatures(
            &client,
            &name,
            &draft,
            &good,
            live,
            doc.signatures.is_empty(),
        ),
        None if !doc.signatures.is_empty() => Err(CourierError::stale(format!(
            "wave {name} no longer exists on the factory (the request was made to sign it)"
        ))),
        None => {
            let record = local.record().and_then(|r| r.wave.clone());
            create_wave(&client, &name, &draft, &good, record)
        }
    }
}

/// The `waves init` arguments a new wave's `draft` must be rebuilt from: the recorded ones
/// when this machine wrote the request, else those [`waves::request_candidates`] infers.
fn wave_requests(
    client: &Client,
    name: &str,
    draft: &[u8],
    record: Option<WaveRecord>,
) -> Result<Vec<WaveRequest>> {
    if let Some(wave) = record {
        return Ok(vec![WaveRequest {
            name: wave.name,
            version: wave.version,
            tag: wave.tag,
            expires: Timestamp::parse(&wave.expires)
                .map_err(|e| CourierError::Bundle(e.to_string()))?,
            prune: wave.prune,
            source_tag: wave.source_tag,
        }]);
    }
    let signed: shared::metadata::Targets = serde_json::from_slice(draft)
        .map_err(|e| CourierError::Bundle(format!("the wave targets are unreadable: {e}")))?;
    let ci = client.targets_of_version(&signed.version.to_string())?;
    // The tag is only known after looking at the draft; fetch its production targets then.
    let first = waves::request_candidates(name, &signed, &ci, None);
    let tag = match &first {
        Ok(c) => c[0].tag.clone(),
        Err(e) => {
            return Err(CourierError::stale(format!(
                "the wave targets do not match the factory's CI targets of version {}: {e}",
                signed.version
            )))
        }
    };
    let current = current_prod_targets(client, &tag)?;
    waves::request_candidates(name, &signed, &ci, current.as_ref())
        .map_err(|e| CourierError::stale(e.to_string()))
}

/// Creates a new wave from its verified draft and signatures, after checking that the draft
/// is what `waves init` builds from the factory's data now.
fn create_wave(
    client: &Client,
    name: &str,
    draft: &[u8],
    sigs: &[Signature],
    record: Option<WaveRecord>,
) -> Result<()> {
    let mut fresh = None;
    for req in wave_requests(client, name, draft, record)? {
        let built = build_draft(client, &req).map_err(|e| match e {
            CourierError::Other(m) => {
                CourierError::stale(format!("the wave can no longer be built: {m}"))
            }
            other => other,
        })?;
        if built.canonical == draft {
            fresh = Some((req, built));
            break;
        }
    }
    let Some((req, built)) = fresh else {
        return Err(CourierError::Stale {
            reason: "the wave targets are not what `courier waves init` builds from the factory's production and CI targets now (they changed since the request was written)".into(),
            advice: "Nothing was created. Run `courier waves init` again, sign the new request, and push the new \
                     response."
                .into(),
        });
    };
    let signed = RawValue::from_string(String::from_utf8_lossy(draft).into_owned())
        .map_err(|e| CourierError::Other(e.to_string()))?;
    let body = WaveCreate {
        name,
        version: &req.version,
        tag: &req.tag,
        targets: WaveTargets {
            signed: &signed,
            signatures: sigs,
        },
    };
    let bytes = serde_json::to_vec(&body).map_err(|e| CourierError::Other(e.to_string()))?;
    out(&format!("= Creating wave {name}"));
    if let Err(e) = client.create_wave(&bytes) {
        if matches!(e.status(), Some(s) if s < 500) {
            return Err(CourierError::from(e).context("Failed to create a Wave"));
        }
        // Did it take effect? The wave exists with our targets → yes.
        match client.wave(name) {
            Ok(Some(w)) if served_signed(&w.targets).as_deref() == Some(draft) => {
                out(&format!(
                    "Wave {name} was created (the answer was lost, but the wave exists)."
                ));
            }
            Ok(None) => {
                return Err(CourierError::from(e).context("the wave was not created; push again"))
            }
            _ => {
                return Err(CourierError::Uncertain(format!(
                    "creating the wave failed ({e}); check with `courier waves list` before pushing again"
                )))
            }
        }
    }
    out(&format!(
        "Wave {name} created for version {} and tag {}. Roll it out with `courier waves rollout {name} --group GROUP` (or --limit, --uuids), then complete it with `courier waves complete {name}`.",
        req.version, req.tag
    ));
    if let Some(w) = client.wave(name)? {
        if let Ok(doc) = SignedTargets::from_json(&w.targets) {
            out(&format!("  It is {}.", signature_count(client, &doc)?));
        }
    }
    if !built.has_static_deltas {
        out("");
        out(waves::NO_STATIC_DELTA_WARNING);
    }
    Ok(())
}

/// The canonical `signed` bytes of a served targets document.
fn served_signed(doc: &[u8]) -> Option<Vec<u8>> {
    SignedTargets::from_json(doc).ok()?.canonical_signed().ok()
}

/// Adds verified signatures of `draft` to the existing wave `name` (`live`), once: key ids
/// whose signature the wave already carries are not sent again. `new_wave`: the response
/// answers a `waves init` request (a repeated push of it finds the wave created).
fn add_wave_signatures(
    client: &Client,
    name: &str,
    draft: &[u8],
    sigs: &[Signature],
    live: api::Wave,
    new_wave: bool,
) -> Result<()> {
    let doc = SignedTargets::from_json(&live.targets).map_err(|e| {
        CourierError::Server(format!("the targets of wave {name} are unreadable: {e}"))
    })?;
    if doc.canonical_signed().ok().as_deref() != Some(draft) {
        return Err(CourierError::stale(format!(
            "wave {name} on the factory has other targets than the ones this response signs"
        )));
    }
    let have: Vec<&KeyId> = doc.signatures.iter().map(|s| &s.keyid).collect();
    let new: Vec<Signature> = sigs
        .iter()
        .filter(|s| !have.contains(&&s.keyid))
        .cloned()
        .collect();
    if new.is_empty() {
        out(&format!(
            "Wave {name} {} (this response was pushed before); nothing to upload. It is {}.",
            if new_wave {
                "already exists with these targets and signatures"
            } else {
                "already carries the signatures of this response"
            },
            signature_count(client, &doc)?
        ));
        return Ok(());
    }
    if live.status != "active" {
        return Err(CourierError::Other(format!(
            "wave {name} is {}: its targets can no longer be signed; nothing was uploaded",
            api::one_line(&live.status)
        )));
    }
    let ids: Vec<String> = new.iter().map(|s| s.keyid.short()).collect();
    out(&format!("= Signing wave {name} with {}", ids.join(", ")));
    if let Err(e) = client.sign_wave(name, &new) {
        if matches!(e.status(), Some(s) if s < 500) {
            return Err(CourierError::from(e)
                .context("the server refused the signatures; the wave is unchanged"));
        }
        let landed = client
            .wave(name)
            .ok()
            .flatten()
            .and_then(|w| SignedTargets::from_json(&w.targets).ok());
        match landed {
            Some(d) if new.iter().all(|n| d.signatures.iter().any(|s| s.keyid == n.keyid)) => {
                eprintln!("note: the answer was lost, but the wave carries the new signatures");
            }
            Some(_) => {
                return Err(CourierError::from(e)
                    .context("the signatures were not added; the wave is unchanged; push again"))
            }
            None => {
                return Err(CourierError::Uncertain(format!(
                    "signing the wave failed ({e}) and the server cannot be reached to tell whether it took effect; push again (it will not sign twice)"
                )))
            }
        }
    }
    let signed = client
        .wave(name)?
        .and_then(|w| SignedTargets::from_json(&w.targets).ok())
        .unwrap_or(doc);
    out(&format!(
        "Signed wave {name}: it is {}.",
        signature_count(client, &signed)?
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::keys::PrivateKey;
    use std::path::PathBuf;

    fn args(ops: &[OpArg]) -> PullArgs {
        PullArgs {
            bundle: PathBuf::from("x"),
            ops: ops.to_vec(),
            keyid: None,
            threshold: None,
            tags: vec![],
            waves: vec![],
            txid: None,
        }
    }

    #[test]
    fn pull_plans_follow_fioctl_selection() {
        let p = plan_pull(&args(&[])).unwrap();
        assert_eq!(p.ops, vec![OpArg::SignRoot]);
        assert_eq!(p.docs, DocPlan::default());

        let p = plan_pull(&args(&[OpArg::RotateTargets])).unwrap();
        assert_eq!(p.docs.tags, Some(vec![]));
        assert_eq!(p.docs.waves, Some(vec![]));
        assert!(!p.docs.tags_required);
        let p = plan_pull(&args(&[OpArg::AddTargetsKey])).unwrap();
        assert_eq!(
            (p.docs.tags.clone(), p.docs.waves.clone()),
            (Some(vec![]), Some(vec![]))
        );
        assert!(!p.docs.tags_required && !p.docs.waves_required);
        assert_eq!(
            plan_pull(&args(&[OpArg::AddRootKey])).unwrap().docs,
            DocPlan::default()
        );

        // sign-prod-targets: neither flag → all tags and all waves; --tags only → tags only.
        let p = plan_pull(&args(&[OpArg::SignProdTargets])).unwrap();
        assert_eq!(
            (p.docs.tags.clone(), p.docs.waves.clone()),
            (Some(vec![]), Some(vec![]))
        );
        let mut a = args(&[OpArg::SignProdTargets]);
        a.tags = vec!["prod".into()];
        let p = plan_pull(&a).unwrap();
        assert_eq!(
            (p.docs.tags.clone(), p.docs.waves.clone()),
            (Some(vec!["prod".into()]), None)
        );
        a.tags = vec![];
        a.waves = vec!["w1".into()];
        let p = plan_pull(&a).unwrap();
        assert_eq!(
            (p.docs.tags.clone(), p.docs.waves.clone()),
            (None, Some(vec!["w1".into()]))
        );
        assert!(p.docs.waves_required);

        // Refusals before any request.
        assert!(plan_pull(&args(&[OpArg::DeleteRootKey])).is_err());
        let mut a = args(&[OpArg::SetTargetsThreshold]);
        a.threshold = Some(1);
        assert!(plan_pull(&a).is_err());
        a.threshold = Some(2);
        assert_eq!(plan_pull(&a).unwrap().threshold, Some(2));
        let mut a = args(&[OpArg::SignRoot]);
        a.tags = vec!["prod".into()];
        assert!(plan_pull(&a).is_err());
        let mut a = args(&[OpArg::SignProdTargets]);
        a.tags = vec!["../etc".into()];
        assert!(plan_pull(&a).is_err());
        let mut a = args(&[OpArg::DeleteTargetsKey]);
        a.keyid = Some("nothex".into());
        assert!(plan_pull(&a).is_err());
        // Duplicates collapse.
        assert_eq!(
            plan_pull(&args(&[OpArg::SignRoot, OpArg::SignRoot]))
                .unwrap()
                .ops,
            vec![OpArg::SignRoot]
        );
    }

    fn root(version: u64, root_keys: &[&PrivateKey]) -> SignedRoot {
        let mut keys = serde_json::Map::new();
        for k in root_keys {
            keys.insert(
                k.keyid().to_string(),
                serde_json::json!({"keytype": "ED25519", "keyval": {"public": k.public_key().public()}}),
            );
        }
        let ids: Vec<String> = root_keys.iter().map(|k| k.keyid().to_string()).collect();
        let doc = serde_json::json!({"signatures": [], "signed": {"_type": "Root", "consistent_snapshot": false,
            "expires": "2030-01-01T00:00:00Z", "keys": keys,
            "roles": {"root": {"keyids": ids, "threshold": 1}}, "version": version}});
        SignedRoot::from_json(doc.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn new_roots_are_verified_against_both_key_sets() {
        let old = PrivateKey::ed25519_from_seed(&[1; 32]);
        let new = PrivateKey::ed25519_from_seed(&[2; 32]);
        let stranger = PrivateKey::ed25519_from_seed(&[3; 32]);
        let prev = root(1, &[&old]);
        let next = root(2, &[&new]);
        let both = shared::transform::sign_root(&next, &[&new, &old]).unwrap();
        assert!(verify_new_root(&both, &prev, "r").unwrap());
        let only_new = shared::transform::sign_root(&next, &[&new]).unwrap();
        assert!(!verify_new_root(&only_new, &prev, "r").unwrap());
        let bad = shared::transform::sign_root(&next, &[&new, &old, &stranger]).unwrap();
        assert!(verify_new_root(&bad, &prev, "r")
            .unwrap_err()
            .to_string()
            .contains("not from a root key"));
        let wrong_version = shared::transform::sign_root(&root(3, &[&new]), &[&new, &old]).unwrap();
        assert!(verify_new_root(&wrong_version, &prev, "r").is_err());
        let mut tampered = both.clone();
        tampered.signed.expires = Timestamp::parse("2031-01-01T00:00:00Z").unwrap();
        assert!(matches!(
            verify_new_root(&tampered, &prev, "r"),
            Err(CourierError::Verify(_))
        ));
    }
}
