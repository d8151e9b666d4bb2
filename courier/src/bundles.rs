//! Request bundles (what the signer needs) and response bundles (what the courier uploads).
//!
//! Writing a request: read the open transaction and everything the signer needs to check
//! and sign it (root chain, production and wave targets, the encrypted initial root key on
//! the first rotation), build a [`TransferBundle`], write it atomically, keep a copy and a
//! record in the state directory, and print its fingerprint.
//!
//! Pushing a response is careful, in this order, and uploads nothing unless every step
//! passes:
//! 1. the file is a valid response bundle for the configured factory;
//! 2. it answers a request this courier wrote (its request digest is recorded here, and the
//!    response's request part is byte-identical to the kept copy of the request);
//! 3. every signature in the upload verifies locally (roots against the current and new
//!    root keys, targets against the new production root's targets keys); thresholds are
//!    met (or `--allow-partial`);
//! 4. the transaction on the server is still the one the request was made for: same status,
//!    same published roots, same staged roots and online keys, same production and wave
//!    targets — otherwise "stale bundle" (exit code 5) with how to redo it;
//! 5. then one `PUT`; with `--apply`, apply and read the new root back.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::value::RawValue;
use shared::bundle::{self, BundleKind, Operation, RequestInput, TransferBundle, Upload, Writer};
use shared::keys::{KeyId, PublicKey, Signature};
use shared::metadata::{Role, SignedRoot, SignedTargets, Timestamp};
use shared::verify;

use crate::api::{self, Client};
use crate::cli::{OpArg, PullArgs, PushArgs, WavesInitArgs};
use crate::error::{CourierError, Result};
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

/// Loads a response bundle and the request it answers (which this courier must have written).
pub fn load_response(
    ctx: &Ctx,
    file: &Path,
    factory: &str,
) -> Result<(TransferBundle, TransferBundle, RequestRecord)> {
    let resp = TransferBundle::read(file)
        .map_err(|e| CourierError::Bundle(format!("{}: {e}", file.display())))?;
    if resp.kind() != BundleKind::Response {
        return Err(CourierError::Bundle(format!(
            "{} is a {} bundle (fingerprint {}); sign it with the signer and push the response it writes",
            file.display(),
            resp.kind(),
            resp.fingerprint()
        )));
    }
    out(&format!(
        "Response bundle {} (fingerprint {})",
        file.display(),
        resp.fingerprint()
    ));
    if resp.factory() != factory {
        return Err(CourierError::Bundle(format!(
            "the response is for factory {:?} but the courier is working on {factory:?}",
            resp.factory()
        )));
    }
    let store = ctx.state();
    let digest = resp.request_digest().to_string();
    let record = store.find_request(&digest)?.ok_or_else(|| {
        CourierError::Bundle(format!(
            "the response answers request {}, which this courier did not write (or its record is gone); \
             nothing was uploaded",
            resp.request_digest().fingerprint()
        ))
    })?;
    let req_bytes = store.request_bundle(&digest)?.ok_or_else(|| {
        CourierError::Bundle(format!(
            "the copy of request {} is missing from {}; nothing was uploaded",
            record.fingerprint,
            store.dir().display()
        ))
    })?;
    let request = TransferBundle::from_vec(req_bytes).map_err(|e| {
        CourierError::Bundle(format!(
            "the kept copy of request {} is damaged: {e}",
            record.fingerprint
        ))
    })?;
    let pinned = crate::config::CourierConfig::load(&ctx.paths)?.signers;
    if let Some(rec) = resp.record() {
        let mut refused = Vec::new();
        for (i, step) in rec.steps.iter().enumerate() {
            let ops: Vec<String> = step.operations.iter().map(|o| o.to_string()).collect();
            let who = match resp.step_auth(step, &rec.request_sha256) {
                shared::bundle::StepAuth::Signed(id) => {
                    match pinned.iter().find(|(_, k)| **k == id) {
                        Some((name, _)) => format!(", pinned signer {name}"),
                        None => {
                            refused.push(format!(
                                "step {} is signed by {} ({}), which is not a pinned signer",
                                i + 1,
                                id,
                                id.fingerprint()
                            ));
                            format!(", signer identity {} (not pinned)", id.fingerprint())
                        }
                    }
                }
                shared::bundle::StepAuth::Unsigned => {
                    refused.push(format!("step {} carries no signature of its signer", i + 1));
                    ", NOT SIGNED by its signer".to_string()
                }
                shared::bundle::StepAuth::Broken { identity, reason } => {
                    refused.push(format!(
                        "step {} was changed after {} signed it ({reason})",
                        i + 1,
                        identity.fingerprint()
                    ));
                    ", its signature DOES NOT VERIFY".to_string()
                }
            };
            out(&format!(
                "  signed by {} {} at {}: {}{}",
                step.signer.tool,
                step.signer.version,
                step.time,
                ops.join(", "),
                who
            ));
        }
        if let Some(broken) = refused.iter().find(|r| r.contains("was changed after")) {
            // Tampering whatever is pinned: a step no longer matches its own signature.
            return Err(CourierError::Verify(format!(
                "{}: {broken}. The response was changed after it was signed; nothing was uploaded",
                file.display()
            )));
        }
        if !pinned.is_empty() && !refused.is_empty() {
            return Err(CourierError::Verify(format!(
                "{}: the response's steps must be signed by the signers pinned here (`courier config show`), and they are not: {}. It may have been changed on its way from the offline laptops; nothing was uploaded",
                file.display(),
                refused.join("; ")
            )));
        }
    }
    resp.check_answers(&request).map_err(|e| {
        CourierError::Bundle(format!(
            "the response does not answer request {}: {e}",
            record.fingerprint
        ))
    })?;
    if record.factory != factory || record.txid != resp.txid() {
        return Err(CourierError::Bundle(
            "the response's factory or transaction differs from the recorded request".into(),
        ));
    }
    Ok((resp, request, record))
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

/// How the server's transaction compares with the one a request was made for.
#[derive(Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Unchanged: the upload can go.
    Unchanged,
    /// The staged roots already are the upload's (it was pushed before).
    AlreadyUploaded,
}

fn same_root(a: &Option<SignedRoot>, b: &Option<SignedRoot>) -> bool {
    a == b
}

/// Compares the live transaction with the request's snapshot ("is the bundle stale?").
pub fn check_fresh(request: &TransferBundle, live: &Txn, upload: &Upload) -> Result<Freshness> {
    let snap_raw = request.transaction_bytes().to_vec();
    let snap_state: api::UpdatesState = serde_json::from_slice(&snap_raw).map_err(|e| {
        CourierError::Bundle(format!("the request's transaction.json is unreadable: {e}"))
    })?;
    let snap = Txn::parse(snap_raw, snap_state)?;
    let status = &live.state.status;
    if status != api::status::STARTED {
        return Err(CourierError::stale(match status.as_str() {
            api::status::NONE => {
                "the transaction was applied or canceled since the request was pulled".to_string()
            }
            api::status::APPLYING => "the transaction is being applied".to_string(),
            other => format!("the transaction status is {other}"),
        }));
    }
    if live.current_ci != snap.current_ci || !same_root(&live.current_prod, &snap.current_prod) {
        return Err(CourierError::stale(format!(
            "a new root was published since the request was pulled (current version {}, request made for {})",
            live.current_ci.signed.version, snap.current_ci.signed.version
        )));
    }
    let meta = |t: &Txn| t.state.change_meta.get("created-at").cloned();
    if meta(live).is_some() && meta(live) != meta(&snap) {
        return Err(CourierError::stale(
            "the transaction was restarted since the request was pulled (it was created at another time)",
        ));
    }
    if live.state.updated.online_keys != snap.state.updated.online_keys {
        return Err(CourierError::stale(
            "the staged online keys changed since the request was pulled",
        ));
    }
    let uploaded = live.updated_ci.as_ref() == Some(&upload.ci_root)
        && live.updated_prod.as_ref() == Some(&upload.prod_root);
    if live.updated_ci != snap.updated_ci || !same_root(&live.updated_prod, &snap.updated_prod) {
        if uploaded {
            return Ok(Freshness::AlreadyUploaded);
        }
        return Err(CourierError::stale(
            "the staged roots changed since the request was pulled (someone staged other changes)",
        ));
    }
    if uploaded {
        return Ok(Freshness::AlreadyUploaded);
    }
    Ok(Freshness::Unchanged)
}

/// Re-fetches the documents the upload signs and checks their signed content is unchanged.
fn check_docs_fresh(client: &Client, request: &TransferBundle, upload: &Upload) -> Result<()> {
    for (waves, sigs, docs) in [
        (
            false,
            &upload.targets_signatures,
            request.prod_targets_bytes(),
        ),
        (true, &upload.waves_signatures, request.waves_bytes()),
    ] {
        if sigs.is_empty() {
            continue;
        }
        let names: Vec<String> = sigs.keys().cloned().collect();
        let live = if waves {
            client.wave_targets(&names)?
        } else {
            client.prod_targets(&names)?
        }
        .unwrap_or_default();
        let kind = if waves { "wave" } else { "production" };
        for name in &names {
            let same = match (live.get(name), docs.get(name.as_str())) {
                // The request holds the documents exactly as served: identical bytes need no
                // parsing; otherwise compare what a signature covers.
                (Some(raw), Some(ours)) if raw.get().as_bytes() == *ours => true,
                (Some(raw), Some(ours)) => {
                    let theirs = SignedTargets::from_json(raw.get().as_bytes()).map_err(|e| {
                        CourierError::Server(format!("unreadable {kind} targets {name:?}: {e}"))
                    })?;
                    let ours = SignedTargets::from_json(ours).map_err(|e| {
                        CourierError::Verify(format!("{kind} targets {name:?} in the request: {e}"))
                    })?;
                    theirs.canonical_signed().ok() == ours.canonical_signed().ok()
                }
                _ => false,
            };
            if !same {
                return Err(CourierError::stale(format!(
                    "the {kind} targets {name:?} changed (or disappeared) since the request was pulled"
                )));
            }
        }
    }
    Ok(())
}

/// `courier updates push`.
pub fn push(ctx: &Ctx, args: &PushArgs) -> Result<()> {
    let client = ctx.client()?;
    let (resp, request, record) = load_response(ctx, &args.file, client.factory())?;
    if record.purpose == "wave" {
        return Err(CourierError::Usage(format!(
            "{} answers a wave request; create the wave with `courier waves push {}`",
            args.file.display(),
            args.file.display()
        )));
    }
    let upload = resp
        .upload()
        .ok_or_else(|| CourierError::Bundle("the response carries no upload".into()))?
        .clone();
    let incomplete = verify_upload(&request, &upload)?;
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
    let freshness = check_fresh(&request, &live, &upload)?;
    check_docs_fresh(&client, &request, &upload)?;
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

fn build_draft(client: &Client, req: &WaveRequest) -> Result<waves::WaveDraft> {
    let new_targets = client.targets_of_version(&req.version)?;
    let current = client
        .prod_targets(std::slice::from_ref(&req.tag))?
        .and_then(|m| {
            m.get(&req.tag)
                .map(|raw| SignedTargets::from_json(raw.get().as_bytes()))
        })
        .transpose()
        .map_err(|e| {
            CourierError::Server(format!(
                "the production targets of {:?} are unreadable: {e}",
                req.tag
            ))
        })?;
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
    // The factory must have an offline targets key to sign with (fioctl checks the same).
    let root = SignedRoot::from_json(&client.root(false)?)
        .map_err(|e| CourierError::Server(format!("the current root is unreadable: {e}")))?;
    let online = client.ci_targets_pub()?;
    if offline_targets_keys(&root, &online)?.is_empty() {
        return Err(CourierError::Other(
            "Root role is not configured to sign Targets offline. Please, run `courier rotate-offline-key \
             --role targets` in order to create offline Targets keys."
                .into(),
        ));
    }
    let txn = Txn::fetch(&client)?;
    let chain = fetch_chain(ctx, &client, txn.current_ci.signed.version)?;
    check_chain(&chain, &txn.current_ci)?;
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

/// `courier waves push`.
pub fn wave_push(ctx: &Ctx, file: &Path) -> Result<()> {
    let client = ctx.client()?;
    let (resp, request, record) = load_response(ctx, file, client.factory())?;
    let wave = record.wave.clone().ok_or_else(|| {
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
        .get(&wave.name)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            CourierError::Bundle(format!(
                "the response has no signature for wave {:?}",
                wave.name
            ))
        })?;
    let docs = request.waves().map_err(bundle_err)?;
    let doc = docs.get(&wave.name).ok_or_else(|| {
        CourierError::Bundle(format!("the request has no waves/{}.json", wave.name))
    })?;
    let draft = doc
        .canonical_signed()
        .map_err(|e| CourierError::Bundle(e.to_string()))?;
    // The signing key: an offline targets key of the factory's current CI root.
    let root = SignedRoot::from_json(&client.root(false)?)
        .map_err(|e| CourierError::Server(format!("the current root is unreadable: {e}")))?;
    let online = client.ci_targets_pub()?;
    let offline = offline_targets_keys(&root, &online)?;
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
    // Stale? Rebuild the draft from the server's data now; it must be the signed one.
    let req = WaveRequest {
        name: wave.name.clone(),
        version: wave.version.clone(),
        tag: wave.tag.clone(),
        expires: Timestamp::parse(&wave.expires)
            .map_err(|e| CourierError::Bundle(e.to_string()))?,
        prune: wave.prune.clone(),
        source_tag: wave.source_tag.clone(),
    };
    let fresh = build_draft(&client, &req).map_err(|e| match e {
        CourierError::Other(m) => {
            CourierError::stale(format!("the wave can no longer be built: {m}"))
        }
        other => other,
    })?;
    if fresh.canonical != draft {
        return Err(CourierError::Stale {
            reason: "the factory's production or CI targets changed since the wave request was written".into(),
            advice: "Nothing was created. Run `courier waves init` again, sign the new request, and push the new \
                     response."
                .into(),
        });
    }
    let signed = RawValue::from_string(String::from_utf8_lossy(&draft).into_owned())
        .map_err(|e| CourierError::Other(e.to_string()))?;
    let body = WaveCreate {
        name: &wave.name,
        version: &wave.version,
        tag: &wave.tag,
        targets: WaveTargets {
            signed: &signed,
            signatures: &good,
        },
    };
    let bytes = serde_json::to_vec(&body).map_err(|e| CourierError::Other(e.to_string()))?;
    out(&format!("= Creating wave {}", wave.name));
    if let Err(e) = client.create_wave(&bytes) {
        if matches!(e.status(), Some(s) if s < 500) {
            return Err(CourierError::from(e).context("Failed to create a Wave"));
        }
        // Did it take effect? The wave exists with our targets → yes.
        return Err(match client.wave(&wave.name) {
            Ok(Some(w)) if w.get("targets").and_then(|t| t.get("signed")).map(|s| s.to_string())
                == serde_json::from_slice::<serde_json::Value>(&draft).ok().map(|v| v.to_string()) =>
            {
                out(&format!("Wave {} was created (the answer was lost, but the wave exists).", wave.name));
                return Ok(());
            }
            Ok(None) => CourierError::from(e).context("the wave was not created; push again"),
            _ => CourierError::Uncertain(format!(
                "creating the wave failed ({e}); check with `courier waves list` before pushing again"
            )),
        });
    }
    out(&format!(
        "Wave {} created for version {} and tag {}. Roll it out with `fioctl waves rollout`.",
        wave.name, wave.version, wave.tag
    ));
    if !wave.has_static_deltas {
        out("");
        out(waves::NO_STATIC_DELTA_WARNING);
    }
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
