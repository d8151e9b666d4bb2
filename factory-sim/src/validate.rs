//! The server's own checks of a staged root pair, independent of the client-side verifier
//! in `shared` (so it doubles as an independent check of what the courier and signer build).
//!
//! Two levels:
//!
//! * [`check_upload`] — structural problems. A `PUT root/updates` carrying any of them is
//!   refused with 422; `apply` re-checks them.
//! * [`review`] — everything `apply` requires on top (signature thresholds of the current and
//!   the new root keys on both roots, expiry window, production/wave targets still meeting
//!   the production threshold after apply, ...) plus recommendations. These are what
//!   `GET root/updates` reports as `issues.errors` / `issues.warnings`; an unsigned or
//!   partially signed upload is accepted and only blocked at apply.
//!
//! Documented choices:
//!
//! * expiry must be in the future; more than [`MAX_EXPIRY_DAYS`] (3 years) ahead is only a
//!   warning (fioctl always sets one year; what the real server allows is not known, so the
//!   simulator does not refuse what fioctl's behaviour does not show it refuses); less than
//!   [`EXPIRY_WARNING_DAYS`] left is a warning;
//! * a change of the offline targets keys is refused while a wave is active (fioctl's help:
//!   "if there is an active Wave in your factory, the TUF targets rotation is not allowed";
//!   fioctl itself does not check it, so the server does — at apply here);
//! * the CI targets threshold may not change (CI targets carry only the online signature);
//!   the production targets threshold must be at least 2;
//! * production and wave targets are required to meet the new production threshold only once
//!   the factory has (or had) an offline targets key: before the first targets-key rotation
//!   they can only carry the online signature, which is reported as a warning instead (the
//!   design notes' "legitimate oddity" after a first-time root rotation).

use std::collections::{BTreeMap, BTreeSet};

use shared::keys::{KeyId, PrivateKey, PublicKey, Signature};
use shared::metadata::{Role, Root, Timestamp};
use shared::transaction::{Issue, Issues};

use super::docs::{RootDoc, TargetsDoc};
use super::error::SimError;
use super::state::{FactoryRecord, TxRecord, WaveStatus};
use super::store::Blobs;

/// Furthest allowed root expiry, in days from now.
pub const MAX_EXPIRY_DAYS: i64 = 1096;
/// A root expiring within this many days gets a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 30;
/// Lowest production targets threshold the server accepts.
pub const MIN_PROD_TARGETS_THRESHOLD: u64 = 2;

/// Distinct key ids among `allowed` with a valid signature over `msg`. A key counts only if
/// its entry in `keys` really has that key id (SPKI SHA-256).
pub(crate) fn valid_signers(
    keys: &BTreeMap<KeyId, PublicKey>,
    allowed: &[KeyId],
    msg: &[u8],
    sigs: &[Signature],
) -> BTreeSet<KeyId> {
    let mut ok = BTreeSet::new();
    for sig in sigs {
        if ok.contains(&sig.keyid) || !allowed.contains(&sig.keyid) {
            continue;
        }
        let Some(key) = keys.get(&sig.keyid) else {
            continue;
        };
        if key.keyid().ok().as_ref() == Some(&sig.keyid) && key.verify(msg, sig).is_ok() {
            ok.insert(sig.keyid.clone());
        }
    }
    ok
}

/// What the checks compare against: the published roots and the open transaction.
pub(crate) struct Context<'a> {
    pub f: &'a FactoryRecord,
    pub tx: &'a TxRecord,
    pub cur_ci: RootDoc,
    pub cur_prod: Option<RootDoc>,
}

impl<'a> Context<'a> {
    /// Parses the published roots of `f`.
    pub fn new(f: &'a FactoryRecord, tx: &'a TxRecord) -> Result<Context<'a>, SimError> {
        let parse = |t: &str| {
            RootDoc::parse(t.as_bytes()).map_err(|e| SimError::Invalid(format!("stored root: {e}")))
        };
        Ok(Context {
            f,
            tx,
            cur_ci: parse(f.current_ci())?,
            cur_prod: f.current_prod().map(parse).transpose()?,
        })
    }

    /// The current production root, or the CI root when there is none yet.
    pub fn cur_for_prod(&self) -> &RootDoc {
        self.cur_prod.as_ref().unwrap_or(&self.cur_ci)
    }

    /// Public key of a server-held key (published or generated in this transaction).
    fn server_public(&self, keyid: &KeyId) -> Option<PublicKey> {
        let json = self
            .tx
            .new_keys
            .get(keyid)
            .or_else(|| self.f.server_keys.get(keyid))?;
        PrivateKey::from_json(json.as_bytes())
            .ok()
            .map(|k| k.public_key().clone())
    }

    /// Every online key id the server has used in this factory (published and staged).
    fn online_ids(&self) -> BTreeSet<KeyId> {
        self.f
            .online
            .all()
            .into_iter()
            .chain(self.tx.online.all())
            .cloned()
            .collect()
    }
}

const ROLE_NAMES: [&str; 4] = ["root", "snapshot", "targets", "timestamp"];

/// Structure of one staged root (`which` = "CI root" / "production root").
fn check_structure(ctx: &Context<'_>, which: &str, doc: &RootDoc, out: &mut Vec<Issue>) {
    let root = doc.root();
    let cur = ctx.cur_ci.root();
    if root.type_ != "Root" {
        out.push(Issue::new(
            "type",
            format!("{which}: _type must be \"Root\", not {:?}", root.type_),
        ));
    }
    if root.version != cur.version + 1 {
        out.push(
            Issue::new(
                "version",
                format!(
                    "{which}: version must be {} (current version + 1), not {}",
                    cur.version + 1,
                    root.version
                ),
            )
            .arg("expected", cur.version + 1)
            .arg("got", root.version),
        );
    }
    if !root.extra.is_empty() {
        let unknown: Vec<&String> = root.extra.keys().collect();
        out.push(Issue::new(
            "unknown-member",
            format!("{which}: signed has members fioctl does not know and would drop: {unknown:?}"),
        ));
    }
    let names: BTreeSet<&str> = root.roles.keys().map(String::as_str).collect();
    if names != ROLE_NAMES.into_iter().collect() {
        out.push(Issue::new(
            "roles",
            format!("{which}: roles must be exactly root, targets, snapshot and timestamp (found {names:?})"),
        ));
    }
    for (name, role) in &root.roles {
        if role.threshold < 1 {
            out.push(Issue::new(
                "threshold",
                format!("{which}: role {name} has threshold 0"),
            ));
        }
        let distinct: BTreeSet<&KeyId> = role.keyids.iter().collect();
        if distinct.len() != role.keyids.len() {
            out.push(Issue::new(
                "keyids",
                format!("{which}: role {name} lists a key id twice"),
            ));
        }
        for id in &role.keyids {
            if !root.keys.contains_key(id) {
                out.push(
                    Issue::new(
                        "missing-key",
                        format!("{which}: role {name} lists key {id}, which is not in keys"),
                    )
                    .arg("keyid", id),
                );
            }
        }
    }
    for (id, key) in &root.keys {
        match key.keyid() {
            Ok(real) if &real == id => {}
            Ok(real) => out.push(
                Issue::new(
                    "keyid",
                    format!("{which}: key listed as {id} has key id {real} (SHA-256 of its SubjectPublicKeyInfo)"),
                )
                .arg("keyid", id),
            ),
            Err(e) => out.push(Issue::new("bad-key", format!("{which}: key {id}: {e}")).arg("keyid", id)),
        }
    }
    // Online keys: exactly the server's, and only changed through gen-online-keys.
    for role in [Role::Snapshot, Role::Timestamp] {
        let want = ctx.tx.online.get(role).expect("online role");
        if root.role_keyids(role) != std::slice::from_ref(want) {
            out.push(Issue::new(
                "online-key",
                format!(
                    "{which}: the {role} role must list exactly the server's online {role} key {want}; online keys change only through gen-online-keys"
                ),
            ));
        }
    }
    let online_targets = &ctx.tx.online.targets;
    if root
        .role_keyids(Role::Targets)
        .iter()
        .filter(|k| *k == online_targets)
        .count()
        != 1
    {
        out.push(Issue::new(
            "online-key",
            format!(
                "{which}: the targets role must list the server's online targets key {online_targets} exactly once; online keys change only through gen-online-keys"
            ),
        ));
    }
    let all_online = ctx.online_ids();
    for id in root.role_keyids(Role::Targets) {
        if id != online_targets && all_online.contains(id) {
            out.push(Issue::new(
                "online-key",
                format!("{which}: key {id} is a server-held online key and cannot be an offline targets key"),
            ));
        }
    }
    for id in root.role_keyids(Role::Root) {
        if all_online.contains(id) {
            out.push(Issue::new(
                "online-key",
                format!("{which}: key {id} is a server-held online key and cannot be a root key"),
            ));
        }
    }
    for id in ctx.tx.online.all() {
        if let (Some(listed), Some(real)) = (root.keys.get(id), ctx.server_public(id)) {
            if !listed.same_key(&real) {
                out.push(Issue::new(
                    "online-key",
                    format!("{which}: the public key listed for online key {id} is not the server's key"),
                ));
            }
        }
    }
    if root.changelog.as_ref() != Some(&ctx.tx.changelog) {
        out.push(Issue::new(
            "changelog",
            format!("{which}: x-changelog is set by the server at init and must not be changed"),
        ));
    }
}

/// Every signature on a staged root must be by a root key of the current or the new root
/// and must verify; partial signing is fine.
fn check_signature_validity(cur: &Root, doc: &RootDoc, which: &str, out: &mut Vec<Issue>) {
    let new = doc.root();
    let mut seen = BTreeSet::new();
    for sig in &doc.doc.signatures {
        if !seen.insert(sig.keyid.clone()) {
            out.push(Issue::new(
                "signature",
                format!("{which}: two signatures by key {}", sig.keyid),
            ));
            continue;
        }
        let in_new = new.role_keyids(Role::Root).contains(&sig.keyid);
        let in_cur = cur.role_keyids(Role::Root).contains(&sig.keyid);
        let key = if in_new {
            new.keys.get(&sig.keyid)
        } else {
            cur.keys.get(&sig.keyid)
        };
        match key {
            Some(key) if in_new || in_cur => {
                if let Err(e) = key.verify(&doc.signed_bytes, sig) {
                    out.push(
                        Issue::new("signature", format!("{which}: {e} over the canonical signed bytes"))
                            .arg("keyid", &sig.keyid),
                    );
                }
            }
            _ => out.push(
                Issue::new(
                    "signature",
                    format!(
                        "{which}: signature by key {}, which is not a root key of the current or the new root",
                        sig.keyid
                    ),
                )
                .arg("keyid", &sig.keyid),
            ),
        }
    }
}

/// Structural problems of a staged pair (refused at upload with 422).
pub(crate) fn check_upload(ctx: &Context<'_>, ci: &RootDoc, prod: &RootDoc) -> Vec<Issue> {
    let mut out = Vec::new();
    check_structure(ctx, "CI root", ci, &mut out);
    check_structure(ctx, "production root", prod, &mut out);
    check_signature_validity(ctx.cur_ci.root(), ci, "CI root", &mut out);
    check_signature_validity(ctx.cur_for_prod().root(), prod, "production root", &mut out);
    let cur_ci_t = ctx.cur_ci.root().threshold(Role::Targets);
    if ci.root().threshold(Role::Targets) != cur_ci_t {
        out.push(Issue::new(
            "threshold",
            format!("CI root: the targets threshold must stay {cur_ci_t} (CI targets carry only the online signature)"),
        ));
    }
    let prod_t = prod.root().threshold(Role::Targets);
    if prod_t < MIN_PROD_TARGETS_THRESHOLD {
        out.push(Issue::new(
            "threshold",
            format!("production root: the targets threshold must be at least {MIN_PROD_TARGETS_THRESHOLD}, not {prod_t}"),
        ));
    }
    let mut a = ci.signed_value();
    let mut b = prod.signed_value();
    for v in [&mut a, &mut b] {
        if let Some(t) = v.pointer_mut("/roles/targets/threshold") {
            *t = serde_json::Value::Null;
        }
    }
    if a != b {
        out.push(Issue::new(
            "ci-prod-mismatch",
            "the CI and production roots must be identical except for the targets threshold",
        ));
    }
    out
}

/// Kind of a targets document affected by an apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DocKind {
    /// Production targets of a tag.
    Tag,
    /// Targets of an active wave.
    Wave,
}

/// A production/wave targets document as it will be after apply.
#[derive(Clone, Debug)]
pub(crate) struct Projected {
    pub kind: DocKind,
    pub name: String,
    pub doc: TargetsDoc,
    /// Distinct valid signatures by keys of the new production targets role.
    pub valid: usize,
}

/// Production targets of every tag and targets of every active wave as `apply` would leave
/// them: signatures by keys no longer in the new production targets role dropped, the
/// old online signature replaced by one of the new online key if it was rotated, and the
/// staged signatures merged in (by key id).
pub(crate) fn project_targets(
    f: &FactoryRecord,
    tx: &TxRecord,
    new_prod: &Root,
    blobs: &Blobs,
) -> Result<Vec<Projected>, SimError> {
    let allowed = new_prod.role_keyids(Role::Targets);
    let new_online = if tx.rotated.contains(&Role::Targets) {
        let json = tx
            .new_keys
            .get(&tx.online.targets)
            .ok_or_else(|| SimError::Invalid("generated online targets key is missing".into()))?;
        Some(PrivateKey::from_json(json.as_bytes())?)
    } else {
        None
    };
    let empty = Vec::new();
    let docs = f
        .tags
        .iter()
        .map(|(tag, t)| {
            (
                DocKind::Tag,
                tag,
                &t.blob,
                tx.targets_signatures.get(tag).unwrap_or(&empty),
            )
        })
        .chain(
            f.waves
                .iter()
                .filter(|w| w.status == WaveStatus::Active)
                .map(|w| {
                    (
                        DocKind::Wave,
                        &w.name,
                        &w.blob,
                        tx.waves_signatures.get(&w.name).unwrap_or(&empty),
                    )
                }),
        );
    let mut out = Vec::new();
    for (kind, name, blob, staged) in docs {
        let mut doc = TargetsDoc::parse_stored(&blobs.get(blob)?)
            .map_err(|e| SimError::Invalid(format!("stored targets {name}: {e}")))?;
        doc.signatures.retain(|s| {
            allowed.contains(&s.keyid) && !(new_online.is_some() && s.keyid == f.online.targets)
        });
        if let Some(key) = &new_online {
            doc.merge(key.sign(&doc.signed_bytes));
        }
        for sig in staged {
            doc.merge(sig.clone());
        }
        let valid =
            valid_signers(&new_prod.keys, allowed, &doc.signed_bytes, &doc.signatures).len();
        out.push(Projected {
            kind,
            name: name.clone(),
            doc,
            valid,
        });
    }
    Ok(out)
}

/// Threshold check of one staged root against one signing root (current or new).
fn check_threshold(which: &str, by: &str, signer: &Root, doc: &RootDoc, out: &mut Vec<Issue>) {
    let role = signer.role_keyids(Role::Root);
    let need = signer.threshold(Role::Root);
    let have =
        valid_signers(&signer.keys, role, &doc.signed_bytes, &doc.doc.signatures).len() as u64;
    if have < need {
        let missing: Vec<&str> = role
            .iter()
            .filter(|k| !doc.doc.signatures.iter().any(|s| &s.keyid == *k))
            .map(KeyId::as_str)
            .collect();
        out.push(
            Issue::new(
                "missing-signatures",
                format!(
                    "{which} is signed by {have} of the {need} required keys of the {by} root role (unsigned: {})",
                    missing.join(", ")
                ),
            )
            .arg("have", have)
            .arg("need", need),
        );
    }
}

/// Checks `root` for the recommendations that apply to any root (staged or current).
fn root_warnings(root: &Root, online: &BTreeSet<KeyId>, now: &Timestamp, out: &mut Vec<Issue>) {
    let days = now.days_until(&root.expires);
    if (0..EXPIRY_WARNING_DAYS).contains(&days) {
        out.push(
            Issue::new(
                "expiry",
                format!(
                    "the root expires in {days} days ({}): refresh its expiry",
                    root.expires
                ),
            )
            .arg("expires", root.expires),
        );
    }
    if root.role_keyids(Role::Root).len() < 2 {
        out.push(Issue::new(
            "single-root-key",
            "the root role has a single key: consider adding a second offline root key held by another person",
        ));
    }
    if root.offline_targets_keys(online).is_empty() {
        out.push(Issue::new(
            "no-offline-targets-key",
            "there is no offline targets key: production targets and waves cannot be signed offline \
             (rotate-offline-key --role targets)",
        ));
    }
    let used: BTreeSet<&KeyId> = root.roles.values().flat_map(|r| r.keyids.iter()).collect();
    for id in root.keys.keys().filter(|k| !used.contains(k)) {
        out.push(
            Issue::new("unused-key", format!("key {id} is not used by any role")).arg("keyid", id),
        );
    }
}

/// Recommendations for the published metadata (reported when no transaction is open).
pub(crate) fn current_warnings(f: &FactoryRecord, now: &Timestamp) -> Vec<Issue> {
    let mut out = Vec::new();
    let Ok(cur) = RootDoc::parse(f.current_ci().as_bytes()) else {
        return out;
    };
    if !f.root_offline {
        out.push(Issue::new(
            "online-root-key",
            "the TUF root key is still the initial key held by Foundries: take it offline \
             (fioctl keys tuf rotate-offline-key --role root --first-time)",
        ));
    }
    if cur.root().expires <= *now {
        out.push(Issue::new(
            "expiry",
            format!("the root expired at {}", cur.root().expires),
        ));
    }
    let online: BTreeSet<KeyId> = f.online.all().into_iter().cloned().collect();
    root_warnings(cur.root(), &online, now, &mut out);
    out
}

/// Everything `apply` requires, plus recommendations, for the staged pair. Also returns the
/// projected production/wave targets (what apply publishes).
pub(crate) fn review(
    ctx: &Context<'_>,
    ci: &RootDoc,
    prod: Option<&RootDoc>,
    blobs: &Blobs,
    now: &Timestamp,
) -> Result<(Issues, Vec<Projected>), SimError> {
    let mut fx = Issues::default();
    let Some(prod) = prod else {
        fx.errors.push(Issue::new(
            "no-prod-root",
            "no production root is staged: upload the CI and production roots (PUT root/updates)",
        ));
        return Ok((fx, Vec::new()));
    };
    fx.errors = check_upload(ctx, ci, prod);
    let new = ci.root();
    check_threshold("CI root", "current", ctx.cur_ci.root(), ci, &mut fx.errors);
    check_threshold("CI root", "new", new, ci, &mut fx.errors);
    check_threshold(
        "production root",
        "current",
        ctx.cur_for_prod().root(),
        prod,
        &mut fx.errors,
    );
    check_threshold("production root", "new", prod.root(), prod, &mut fx.errors);
    let root_t = new.threshold(Role::Root);
    let root_n = new.role_keyids(Role::Root).len() as u64;
    if root_t > root_n {
        fx.errors.push(Issue::new(
            "threshold",
            format!(
                "the root threshold {root_t} is higher than the number of root keys ({root_n})"
            ),
        ));
    }
    if new.expires <= *now {
        fx.errors.push(Issue::new(
            "expiry",
            format!("the staged root expires in the past ({})", new.expires),
        ));
    } else if now.days_until(&new.expires) > MAX_EXPIRY_DAYS {
        fx.warnings.push(Issue::new(
            "expiry",
            format!(
                "the staged root expires {}, more than {MAX_EXPIRY_DAYS} days ahead: devices will trust its keys that long",
                new.expires
            ),
        ));
    }
    // A targets key rotation while a wave is active.
    let online = ctx.online_ids();
    let before: BTreeSet<KeyId> = ctx
        .cur_ci
        .root()
        .offline_targets_keys(&online)
        .into_iter()
        .collect();
    let after: BTreeSet<KeyId> = new.offline_targets_keys(&online).into_iter().collect();
    if before != after && !before.is_empty() {
        let active: Vec<&str> = ctx
            .f
            .waves
            .iter()
            .filter(|w| w.status == WaveStatus::Active)
            .map(|w| w.name.as_str())
            .collect();
        if !active.is_empty() {
            fx.errors.push(
                Issue::new(
                    "active-wave",
                    format!(
                        "the TUF targets key rotation is not allowed while a wave is active ({}): complete or cancel the wave first",
                        active.join(", ")
                    ),
                )
                .arg("waves", active.join(",")),
            );
        }
    }
    if ctx.tx.first_time
        && !new
            .role_keyids(Role::Root)
            .iter()
            .any(|k| !ctx.f.server_keys.contains_key(k))
    {
        fx.errors.push(Issue::new(
            "first-time",
            "a first-time rotation must put an offline root key (not held by the server) into the root role",
        ));
    }
    // Production and wave targets after apply.
    let projected = project_targets(ctx.f, ctx.tx, prod.root(), blobs)?;
    let need = prod.root().threshold(Role::Targets);
    let enforce = !prod.root().offline_targets_keys(&online).is_empty()
        || !ctx
            .cur_for_prod()
            .root()
            .offline_targets_keys(&online)
            .is_empty();
    for p in &projected {
        if (p.valid as u64) < need {
            let what = match p.kind {
                DocKind::Tag => format!("production targets of tag {}", p.name),
                DocKind::Wave => format!("targets of wave {}", p.name),
            };
            let issue = Issue::new(
                "targets-signatures",
                format!(
                    "{what} would carry {} of the {need} valid signatures the new production root requires",
                    p.valid
                ),
            )
            .arg("name", &p.name)
            .arg("have", p.valid)
            .arg("need", need);
            if enforce {
                fx.errors.push(issue);
            } else {
                fx.warnings.push(Issue {
                    message: format!(
                        "{} (allowed until the first offline targets key is added)",
                        issue.message
                    ),
                    ..issue
                });
            }
        }
    }
    let targets_keys = prod.root().role_keyids(Role::Targets).len() as u64;
    if need > targets_keys {
        fx.warnings.push(Issue::new(
            "threshold",
            format!(
                "the production targets threshold {need} is higher than the number of targets keys ({targets_keys}): \
                 add an offline targets key before signing production targets"
            ),
        ));
    }
    root_warnings(new, &online, now, &mut fx.warnings);
    Ok((fx, projected))
}

/// Human-readable list of what the staged pair changes, for `GET root/updates`.
pub(crate) fn amendments(ctx: &Context<'_>, ci: &RootDoc, prod: Option<&RootDoc>) -> Vec<Issue> {
    let cur = ctx.cur_ci.root();
    let new = ci.root();
    let mut out = vec![Issue::new(
        "version",
        format!("Create TUF root version {}", new.version),
    )
    .arg("version", new.version)];
    let online = ctx.online_ids();
    for role in [Role::Root, Role::Targets] {
        let old: BTreeSet<&KeyId> = cur
            .role_keyids(role)
            .iter()
            .filter(|k| !online.contains(*k))
            .collect();
        let now: BTreeSet<&KeyId> = new
            .role_keyids(role)
            .iter()
            .filter(|k| !online.contains(*k))
            .collect();
        let label = if role == Role::Root && !ctx.f.root_offline {
            ""
        } else {
            "offline "
        };
        for id in now.difference(&old) {
            out.push(
                Issue::new("add-key", format!("Add {label}TUF {role} key {id}"))
                    .arg("role", role)
                    .arg("keyid", id),
            );
        }
        for id in old.difference(&now) {
            out.push(
                Issue::new("remove-key", format!("Remove TUF {role} key {id}"))
                    .arg("role", role)
                    .arg("keyid", id),
            );
        }
    }
    for role in &ctx.tx.rotated {
        if let (Some(old), Some(new_id)) = (ctx.f.online.get(*role), ctx.tx.online.get(*role)) {
            out.push(
                Issue::new(
                    "rotate-online-key",
                    format!("Replace online TUF {role} key {old} with {new_id}"),
                )
                .arg("role", role),
            );
        }
    }
    if cur.threshold(Role::Root) != new.threshold(Role::Root) {
        out.push(Issue::new(
            "threshold",
            format!(
                "Change TUF root threshold from {} to {}",
                cur.threshold(Role::Root),
                new.threshold(Role::Root)
            ),
        ));
    }
    if let Some(prod) = prod {
        let t = prod.root().threshold(Role::Targets);
        match &ctx.cur_prod {
            Some(cp) if cp.root().threshold(Role::Targets) != t => out.push(Issue::new(
                "threshold",
                format!(
                    "Change production TUF targets threshold from {} to {t}",
                    cp.root().threshold(Role::Targets)
                ),
            )),
            None => out.push(Issue::new(
                "prod-root",
                format!("Create the production TUF root (targets threshold {t})"),
            )),
            _ => {}
        }
    }
    if cur.expires != new.expires {
        out.push(Issue::new(
            "expiry",
            format!(
                "Change TUF root expiry from {} to {}",
                cur.expires, new.expires
            ),
        ));
    }
    for (tag, sigs) in &ctx.tx.targets_signatures {
        out.push(Issue::new(
            "targets-signatures",
            format!(
                "Add {} signature(s) to the production targets of tag {tag}",
                sigs.len()
            ),
        ));
    }
    for (wave, sigs) in &ctx.tx.waves_signatures {
        out.push(Issue::new(
            "waves-signatures",
            format!(
                "Add {} signature(s) to the targets of wave {wave}",
                sigs.len()
            ),
        ));
    }
    out
}
