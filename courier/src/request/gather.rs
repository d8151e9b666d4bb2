//! Gathering what a root updates request carries from the factory: the open transaction,
//! the root chain `1..N` as served, the production and wave targets the plan selects, and,
//! on the first rotation, the kept (age-encrypted) initial root key — with the checks that
//! must pass before a request is written.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use shared::bundle::{self, MemberData, Operation, RequestInput, Spool};
use shared::keys::PublicKey;
use shared::metadata::{Role, SignedRoot, SignedTargets};
use shared::transaction::ParsedTransaction;
use shared::verify;

use super::plan::Plan;
use super::writer;
use crate::api::Client;
use crate::cli::OpArg;
use crate::error::{CourierError, Result};
use crate::transaction::require_started;
use crate::Ctx;

/// Fetches the root chain `1..=n` as served, with a progress bar.
pub fn fetch_chain(client: &Client, n: u64) -> Result<Vec<Vec<u8>>> {
    let bar = client.progress_bar(n, "root chain");
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
pub fn check_chain(ctx: &Ctx, chain: &[Vec<u8>], current: &SignedRoot) -> Result<()> {
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
        ctx.out.warning(&format!(
            "the server's root chain does not verify ({e}); the signer will refuse it"
        ));
    }
    Ok(())
}

/// Fetches production (or wave) targets documents into `spool`, each checked as it arrives
/// (so an answer of any size is never held whole). `None` in the plan fetches nothing.
fn fetch_docs(
    client: &Client,
    names: &Option<Vec<String>>,
    required: bool,
    waves: bool,
    spool: &mut Spool,
    stop: &AtomicBool,
) -> Result<BTreeMap<String, MemberData>> {
    let Some(names) = names else {
        return Ok(BTreeMap::new());
    };
    let what = if waves {
        "wave targets"
    } else {
        "production targets"
    };
    // This thread receives and splits the answer; another checks each document and adds it
    // to the spool, so checking overlaps with the transfer. A few documents wait between
    // them: memory stays bounded whatever the answer's size.
    let (found, out) = std::thread::scope(|scope| {
        let (to_check, checks) = std::sync::mpsc::sync_channel::<(String, Vec<u8>)>(8);
        let checker = scope.spawn(move || -> Result<BTreeMap<String, MemberData>> {
            let mut out = BTreeMap::new();
            for (name, text) in checks {
                bundle::validate_doc_name(&name).map_err(|e| {
                    CourierError::Server(format!(
                        "the server sent {what} with an unusable name: {e}"
                    ))
                })?;
                SignedTargets::check_json(&text).map_err(|e| {
                    CourierError::Server(format!("the server sent unreadable {what} {name:?}: {e}"))
                })?;
                // The document text as served.
                out.insert(name, spool.append(&text)?);
            }
            Ok(out)
        });
        let found = client.docs_each::<CourierError>(waves, names, &mut |name, text| {
            if stop.load(Ordering::Relaxed) {
                return Err(CourierError::Other(
                    "the documents were not needed any more".into(),
                ));
            }
            if !names.is_empty() && !names.contains(&name) {
                return Ok(());
            }
            // A checker that stopped has refused a document: its error is the one told.
            to_check
                .send((name, text))
                .map_err(|_| CourierError::Other("the document check stopped".into()))
        });
        drop(to_check);
        let checked = checker
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        match (found, checked) {
            (_, Err(e)) | (Err(e), _) => Err(e),
            (Ok(found), Ok(out)) => Ok((found, out)),
        }
    })?;
    if !found && required {
        return Err(CourierError::Other(format!(
            "Failed to fetch {what}: the factory has none{}",
            if names.is_empty() {
                String::new()
            } else {
                format!(" for {}", names.join(","))
            }
        )));
    }
    for n in names {
        if !out.contains_key(n) {
            return Err(CourierError::Other(format!(
                "the factory has no {what} for {n:?}"
            )));
        }
    }
    Ok(out)
}

fn online_key_roles(txn: &ParsedTransaction) -> Vec<Role> {
    let mut roles = Vec::new();
    for role in [Role::Targets, Role::Snapshot, Role::Timestamp] {
        let cur = txn.current_online_keys().get(role.as_str());
        let upd = txn.updated_online_keys().get(role.as_str());
        if upd.is_some() && cur != upd {
            roles.push(role);
        }
    }
    roles
}

/// Gathers everything for a root-updates request of `plan` in transaction `txid`: the
/// operations completed from what the factory serves (online keys rotated by the server,
/// the documents to sign), the chain and documents, the kept initial root key.
///
/// The documents go to `spool` (a scratch file beside the bundle to write) as they arrive.
/// Which documents a plan takes does not depend on the transaction, so they are fetched
/// (GETs: nothing changes on the server) while the transaction and the root chain are read
/// and checked on this thread, and used only once those checks pass; when one fails, the
/// transfer of documents is stopped and its error is the one told.
pub fn gather_request(
    ctx: &Ctx,
    client: &Client,
    plan: &Plan,
    txid: &str,
    spool: &mut Spool,
) -> Result<RequestInput> {
    let stop = AtomicBool::new(false);
    let (checked, docs) = std::thread::scope(|scope| {
        let docs = scope.spawn(|| {
            let prod = fetch_docs(
                client,
                &plan.docs.tags,
                plan.docs.tags_required,
                false,
                spool,
                &stop,
            )?;
            let waves = fetch_docs(
                client,
                &plan.docs.waves,
                plan.docs.waves_required,
                true,
                spool,
                &stop,
            )?;
            Ok::<_, CourierError>((prod, waves))
        });
        let checked = read_transaction(ctx, client, plan);
        if checked.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        let docs = docs.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        (checked, docs)
    });
    let Checked {
        txn,
        mut ops,
        first_root_secret,
        chain,
    } = checked?;
    let (prod_targets, wave_docs) = docs?;
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
        factory: client.factory().to_string(),
        txid: txid.to_string(),
        writer: writer(),
        created: ctx.now,
        operations: ops,
        transaction: txn.raw.clone(),
        chain,
        prod_targets,
        waves: wave_docs,
        docs_checked: true,
        first_root_secret,
    })
}

/// What [`read_transaction`] read and checked.
struct Checked {
    txn: ParsedTransaction,
    /// The operations so far (without those the documents complete).
    ops: Vec<Operation>,
    first_root_secret: Option<Vec<u8>>,
    chain: Vec<Vec<u8>>,
}

/// The transaction (it must be started), the operations of `plan` completed from it, the
/// kept initial root key of a first-time rotation, and the root chain, checked.
fn read_transaction(ctx: &Ctx, client: &Client, plan: &Plan) -> Result<Checked> {
    let txn = client.updates()?;
    require_started(&txn)?;
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
                    && txn.updated_online_keys().get(Role::Targets.as_str()) == Some(&keyid)
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
        .updated_online_keys()
        .get(Role::Targets.as_str())
        .is_none()
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
        if !txn.wire.first_time {
            return Err(CourierError::Other(
                "the open transaction is not a first-time transaction; use --op rotate-root".into(),
            ));
        }
        let (sealed, public) = ctx.state()?.first_root(&factory)?.ok_or_else(|| {
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
    let chain = fetch_chain(client, n)?;
    check_chain(ctx, &chain, &txn.current_ci)?;
    Ok(Checked {
        txn,
        ops,
        first_root_secret,
        chain,
    })
}
