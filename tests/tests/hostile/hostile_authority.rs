//! Nothing is signed that an offline operator did not authorize (issue 17), tried as an
//! attacker who controls the online machine (and so the courier's output), the USB stick
//! between any two machines and the Factory server's answers, and who holds the initial
//! (first-root) key. One named case per attack, each through the real binaries against the
//! simulator, each tried twice: with `--yes` (a script) and on a real terminal where the
//! operator carelessly types `yes` at every question. Every attack must be refused with a
//! non-zero exit and a message naming what is wrong, leaving the keys tarballs byte for
//! byte as they were, no response written, and the server's committed state unchanged.
//!
//! The classes:
//! 1. the online side declares the operation (a request listing an operation the operator
//!    did not type, for a root key the online side chose);
//! 2. an earlier step on the stick is rewritten (the new targets key swapped, a step added
//!    by an unknown identity, a step added without any signature);
//! 3. a fork signed with the initial root key;
//! 4. production targets laundered through a rotation (content changed and re-signed by
//!    the online key alone under a stale offline signature entry);
//!
//! plus the courier, which pins the signers' identities, refusing a response whose steps
//! do not verify against them. After the refusals the honest ceremony goes through.

use std::path::{Path, PathBuf};

use serde_json::Value;
use shared::attestation::SigningIdentity;
use shared::authority::Change;
use shared::bundle::{Operation, StepInput, TransferBundle, Upload, Writer};
use shared::keys::{KeyId, KeyType, PrivateKey};
use shared::metadata::{Role, SignedRoot, SignedTargets, Timestamp};
use shared::test_support::cases::{run_cases, Case};
use shared::transform;
use tests::harness::{path_str, snapshot_files, History, Run, World, WorldOptions};
use tests::tamper::Parts;

/// How the refusal shows.
#[derive(Clone, Copy, Debug)]
enum Refusal {
    /// Changes nothing authorized: `--yes` refuses them, a terminal asks for their codes.
    NeedsAuthority,
    /// Unsignable whatever anyone confirms.
    MustNotSign,
    /// A root this signer signed or pinned differs: a fork.
    Fork,
    /// A carried targets document's signature does not verify.
    Altered,
}

/// What one attack leaves for the operator: the command they type and what must not change.
struct Attack {
    /// The laptop the command runs on (the root key holder unless said otherwise).
    targets_holder: bool,
    /// The operator's command, without `--yes`.
    args: Vec<String>,
    /// The response the command would write.
    out: PathBuf,
    /// Keys files (and anything else) that must stay byte for byte as they are.
    unchanged: Vec<PathBuf>,
    /// What the refusal says, in both modes.
    says: Vec<String>,
    /// How it is refused.
    refusal: Refusal,
}

/// How one attack (a named case) is staged.
struct Staging {
    /// The factory it starts from.
    history: History,
    /// What the attacker does to it.
    build: fn(&World) -> Attack,
}

fn s(p: &Path) -> String {
    path_str(p).to_string()
}

/// A factory two laptops look after. `History::Fresh`: the first-time rotation done on
/// the root key holder's laptop (`offline`), the targets key holder's laptop (`offline2`)
/// pinned, the two laptops and the courier pinning each other's signing identities.
/// `History::Offline`: a factory that went offline (root v3; both keys tarballs on the root
/// key holder's laptop) with a production tag signed by the online and the offline key.
fn world(history: History) -> World {
    if history == History::Offline {
        let w = World::new(WorldOptions {
            tags: 1,
            history,
            ..WorldOptions::default()
        });
        w.pin_trust(&w.offline, &[]);
        return w;
    }
    let w = World::new(WorldOptions::default());
    // The initial root key passes through the online side: the attacker keeps a copy.
    let initial = w
        .view()
        .server_key(&w.init.root_keyid)
        .expect("the server holds the initial root key before the first rotation");
    std::fs::write(attacker_copy_of_initial_key(&w), initial.to_json()).unwrap();
    w.first_time_rotation(&w.offline, w.offline.path("root.keys.tgz"));
    w.pin_trust(&w.offline2, &[]);
    w.pin_cosigners();
    w
}

/// Where the attacker keeps the initial root key (outside every laptop).
fn attacker_copy_of_initial_key(w: &World) -> PathBuf {
    w.root.join("attacker-initial-root.sec")
}

fn root_keys(w: &World) -> PathBuf {
    w.offline.path("root.keys.tgz")
}

/// The targets key holder's part of an honest targets rotation (a request from the
/// courier, the new key in `offline2/targets.keys.tgz`, then the production tag endorsed:
/// two steps): its path and the new key id.
fn honest_targets_step(w: &World) -> (PathBuf, KeyId) {
    let req = w.usb("targets.req.tufbundle");
    let step = w.usb("targets.step1.tufbundle");
    w.request_rotation("targets", &req);
    let tk = w.offline2.path("targets.keys.tgz");
    w.rotate_targets_half(&w.offline2, &tk, &req, &step);
    let new = tests::harness::tarball_keyids(&tk, Role::Targets);
    assert_eq!(new.len(), 1);
    (step, new[0].clone())
}

/// `signer sign --keys root.keys.tgz INPUT -o OUT` on the root key holder's laptop.
fn sign_attack(w: &World, input: &Path, says: Vec<String>, refusal: Refusal) -> Attack {
    let out = w.usb("attacked.resp.tufbundle");
    Attack {
        targets_holder: false,
        args: vec![
            "sign".into(),
            "--keys".into(),
            s(&root_keys(w)),
            s(input),
            "-o".into(),
            s(&out),
        ],
        out,
        unchanged: vec![root_keys(w), w.offline2.path("targets.keys.tgz")],
        says,
        refusal,
    }
}

/// Both roots of an upload with `edit` applied to their `signed` parts (signatures kept).
fn edit_upload_roots(upload: &mut Value, edit: &dyn Fn(&mut SignedRoot)) {
    for which in ["ci-root", "prod-root"] {
        let mut root: SignedRoot =
            SignedRoot::from_json(&serde_json::to_vec(&upload[which]).unwrap()).unwrap();
        edit(&mut root);
        upload[which] = serde_json::from_slice(&root.to_json().unwrap()).unwrap();
    }
}

fn signed_digest(root: &Value) -> String {
    let r = SignedRoot::from_json(&serde_json::to_vec(root).unwrap()).unwrap();
    shared::bundle::Sha256Digest::of(&r.canonical_signed().unwrap()).to_string()
}

// --- Class 1 -------------------------------------------------------------------------

/// The online side stages an extra root key (a plain API call with the admin token) and
/// the request lists `add-offline-key` for it; the operator types a targets rotation.
fn online_side_declares_an_extra_root_key(w: &World) -> Attack {
    w.courier([
        "updates",
        "init",
        "-m",
        "Rotate TUF targets offline signing key",
    ])
    .ok();
    let updates = format!("/ota/repo/{}/api/v1/user_repo/root/updates", w.factory);
    let state: Value = serde_json::from_slice(&w.api_get(&updates).unwrap()).unwrap();
    let staged =
        |k: &str| SignedRoot::from_json(state["updated"][k].as_str().unwrap().as_bytes()).unwrap();
    let attacker = PrivateKey::generate(KeyType::Ed25519).unwrap();
    let (mut ci, mut prod) = (staged("ci-root"), staged("prod-root"));
    for root in [&mut ci, &mut prod] {
        root.signed =
            transform::add_offline_key(&root.signed, Role::Root, attacker.public_key(), None)
                .unwrap();
    }
    let body = serde_json::json!({
        "txid": w.view().transaction().unwrap().txid,
        "ci-root": serde_json::from_slice::<Value>(&ci.to_json().unwrap()).unwrap(),
        "prod-root": serde_json::from_slice::<Value>(&prod.to_json().unwrap()).unwrap(),
    });
    let (status, text) = w.api_send(reqwest::Method::PUT, &updates, &body);
    assert!((200..300).contains(&status), "PUT refused: {status} {text}");
    let req = w.usb("declared.req.tufbundle");
    w.courier([
        "updates",
        "pull",
        "--op",
        "rotate-targets",
        "--bundle",
        path_str(&req),
    ])
    .ok();
    // The courier's output lists the attacker's key as a requested operation.
    let mut p = Parts::read(&req);
    p.manifest["operations"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"op": "add-offline-key", "role": "root", "keyid": attacker.keyid().to_string()}));
    p.write(&req);
    let tk = w.offline.path("targets.keys.tgz");
    let out = w.usb("declared.resp.tufbundle");
    Attack {
        targets_holder: false,
        args: vec![
            "rotate-offline-key".into(),
            "--role".into(),
            "targets".into(),
            "--keys".into(),
            s(&root_keys(w)),
            "--targets-keys".into(),
            s(&tk),
            s(&req),
            "-o".into(),
            s(&out),
        ],
        out,
        unchanged: vec![root_keys(w), tk],
        says: vec![
            attacker.keyid().to_string(),
            "proposed by the online side (add-offline-key root".into(),
        ],
        refusal: Refusal::NeedsAuthority,
    }
}

// --- Class 2 -------------------------------------------------------------------------

/// The stick holder swaps the targets key holder's new key for their own in step 1 (the
/// drafts, the step's claim and its output digests; digests of the bundle recomputed).
fn stick_swaps_the_new_targets_key(w: &World) -> Attack {
    let (step, new) = honest_targets_step(w);
    let attacker = PrivateKey::generate(KeyType::Ed25519).unwrap();
    let evil = attacker.keyid().clone();
    let mut p = Parts::read(&step);
    let mut upload = p.json(shared::bundle::UPLOAD);
    edit_upload_roots(&mut upload, &|r: &mut SignedRoot| {
        r.signed.keys.remove(&new);
        r.signed
            .keys
            .insert(evil.clone(), attacker.public_key().clone());
        for k in r.signed.role_mut(Role::Targets).unwrap().keyids.iter_mut() {
            if *k == new {
                *k = evil.clone();
            }
        }
        if let Some(o) = r.signed.key_owners.as_mut() {
            if let Some(owner) = o.remove(&new) {
                o.insert(evil.clone(), owner);
            }
        }
    });
    let mut record = p.json(shared::bundle::RECORD);
    for step in record["steps"].as_array_mut().unwrap() {
        step["authorized"] = serde_json::json!([
            {"change": "key-added", "role": "targets", "keyid": evil.to_string()}
        ]);
        step["output"] = serde_json::json!({
            "ci-root": signed_digest(&upload["ci-root"]),
            "prod-root": signed_digest(&upload["prod-root"]),
        });
    }
    p.set_json(shared::bundle::UPLOAD, &upload);
    p.set_json(shared::bundle::RECORD, &record);
    let forged = w.usb("swapped.step1.tufbundle");
    p.write(&forged);
    sign_attack(
        w,
        &forged,
        vec!["step 1 was changed after its signer".into()],
        Refusal::MustNotSign,
    )
}

/// Step 1 is honest; the stick holder adds a step 2 that adds a root key of theirs, signed
/// with an identity of their own that nobody pinned.
fn stick_adds_a_step_by_an_unknown_identity(w: &World) -> Attack {
    let (step, _) = honest_targets_step(w);
    let (forged, extra) = add_root_key_step(w, &step, true);
    sign_attack(
        w,
        &forged,
        vec![extra.to_string(), "identity nobody pinned here".into()],
        Refusal::NeedsAuthority,
    )
}

/// The same step 2, with its attestation stripped.
fn stick_adds_an_unsigned_step(w: &World) -> Attack {
    let (step, _) = honest_targets_step(w);
    let (forged, _) = add_root_key_step(w, &step, false);
    sign_attack(
        w,
        &forged,
        vec!["carries no signature of the signer that made it".into()],
        Refusal::MustNotSign,
    )
}

/// A step appended to `input` that adds an attacker root key and claims it; signed by an
/// attacker identity, or (`signed` false) with the attestation removed.
fn add_root_key_step(w: &World, input: &Path, signed: bool) -> (PathBuf, KeyId) {
    let b = TransferBundle::read(input).unwrap();
    let mut upload: Upload = b.upload().unwrap().clone();
    let extra = PrivateKey::generate(KeyType::Ed25519).unwrap();
    let added =
        transform::add_offline_key(&upload.ci_root.signed, Role::Root, extra.public_key(), None)
            .unwrap();
    let (ci, prod) = transform::finalize(&added, Some(&upload.prod_root.signed));
    upload.ci_root = ci;
    upload.prod_root = prod;
    let next = b
        .respond(
            StepInput {
                signer: Writer::new("signer", "0.1.0"),
                time: Timestamp::now(),
                operations: vec![Operation::AddOfflineKey {
                    role: Role::Root,
                    keyid: Some(extra.keyid().clone()),
                }],
                authorized: vec![Change::KeyAdded {
                    role: Role::Root,
                    keyid: extra.keyid().clone(),
                }],
                upload,
            },
            &SigningIdentity::generate(),
        )
        .unwrap();
    let path = w.usb(if signed {
        "added-step.tufbundle"
    } else {
        "unsigned-step.tufbundle"
    });
    next.write_atomic(&path, shared::archive::Compression::None)
        .unwrap();
    if !signed {
        let mut p = Parts::read(&path);
        let mut record = p.json(shared::bundle::RECORD);
        record["steps"]
            .as_array_mut()
            .unwrap()
            .last_mut()
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove("attestation");
        p.set_json(shared::bundle::RECORD, &record);
        p.write(&path);
    }
    (path, extra.keyid().clone())
}

// --- Class 3 -------------------------------------------------------------------------

/// With the initial root key (held online, so known to the attacker) the attacker makes a
/// second, different version 2 that still lists the operator's key beside their own, and
/// builds the next request on it.
fn fork_signed_with_the_initial_key(w: &World) -> Attack {
    let view = w.view();
    let initial =
        PrivateKey::from_json(&std::fs::read(attacker_copy_of_initial_key(w)).unwrap()).unwrap();
    let genuine_v2 = view.ci_root().unwrap();
    let v1 = view.root(1, false).unwrap().unwrap();
    let attacker = PrivateKey::generate(KeyType::Ed25519).unwrap();
    let mut fork = v1.signed.clone();
    fork.version = 2;
    fork.expires = genuine_v2.signed.expires;
    let operator = genuine_v2.signed.role_keyids(Role::Root)[0].clone();
    fork.keys
        .insert(operator.clone(), genuine_v2.signed.keys[&operator].clone());
    fork.keys
        .insert(attacker.keyid().clone(), attacker.public_key().clone());
    fork.role_mut(Role::Root).unwrap().keyids = vec![operator, attacker.keyid().clone()];
    let (ci2, prod2) = transform::finalize(&fork, None);
    let ci2 = transform::sign_root(&ci2, &[&initial, &attacker]).unwrap();
    let prod2 = transform::sign_root(&prod2, &[&initial, &attacker]).unwrap();
    let mut draft = ci2.signed.clone();
    draft.version = 3;
    let (ci3, prod3) = transform::finalize(&draft, Some(&prod2.signed));
    // The courier's genuine request for the next ceremony, with the forked history.
    let req = w.usb("fork.req.tufbundle");
    w.request_rotation("root", &req);
    let mut p = Parts::read(&req);
    let as_str = |r: &SignedRoot| Value::String(String::from_utf8(r.to_json().unwrap()).unwrap());
    let mut tx = p.json(shared::bundle::TRANSACTION);
    tx["current"]["ci-root"] = as_str(&ci2);
    tx["current"]["prod-root"] = as_str(&prod2);
    tx["updated"]["ci-root"] = as_str(&ci3);
    tx["updated"]["prod-root"] = as_str(&prod3);
    p.set_json(shared::bundle::TRANSACTION, &tx);
    p.members
        .insert("chain/2.root.json".into(), ci2.to_json().unwrap());
    p.write(&req);
    let out = w.usb("fork.resp.tufbundle");
    Attack {
        targets_holder: false,
        args: vec![
            "rotate-offline-key".into(),
            "--role".into(),
            "root".into(),
            "--keys".into(),
            s(&root_keys(w)),
            s(&req),
            "-o".into(),
            s(&out),
        ],
        out,
        unchanged: vec![root_keys(w)],
        says: vec![
            "FORK".into(),
            "The initial root key signed that version".into(),
        ],
        refusal: Refusal::Fork,
    }
}

// --- Class 4 -------------------------------------------------------------------------

/// Production targets signed by the online and the offline targets key are changed and
/// re-signed by the online key alone; the stale offline signature entry is kept, hoping a
/// targets rotation re-signs the document because it "has" an offline signature.
fn targets_laundered_through_a_rotation(w: &World) -> Attack {
    // The production tag carries the online and the offline targets signature.
    let tk = w.offline.path("targets.keys.tgz");
    let tag = w.init.tags[0].clone();
    let online = w.view().online_keys().targets.clone();
    let online_key = w.view().server_key(&online).expect("online targets key");
    // The next rotation's request, with the production targets altered on the way.
    let req = w.usb("launder.req.tufbundle");
    w.request_rotation("targets", &req);
    let mut p = Parts::read(&req);
    let member = format!("prod-targets/{tag}.json");
    let mut doc = SignedTargets::from_json(&p.members[&member]).unwrap();
    assert_eq!(doc.signatures.len(), 2, "online and offline signatures");
    let first = doc.signed.targets.keys().next().unwrap().clone();
    doc.signed.targets.get_mut(&first).unwrap().length += 1;
    let sig = online_key.sign(&doc.canonical_signed().unwrap());
    doc.signatures.retain(|s| s.keyid != online);
    doc.signatures.insert(0, sig);
    p.members.insert(member, doc.to_json().unwrap());
    p.write(&req);
    let out = w.usb("launder.resp.tufbundle");
    Attack {
        targets_holder: false,
        args: vec![
            "rotate-offline-key".into(),
            "--role".into(),
            "targets".into(),
            "--keys".into(),
            s(&root_keys(w)),
            "--targets-keys".into(),
            s(&tk),
            s(&req),
            "-o".into(),
            s(&out),
        ],
        out,
        unchanged: vec![root_keys(w), tk],
        says: vec![format!(
            "prod-targets/{tag}.json: its signature by the offline targets key"
        )],
        refusal: Refusal::Altered,
    }
}

/// Every attack, by name.
fn attacks() -> Vec<Case<Staging>> {
    let case = |name: &str, history: History, build: fn(&World) -> Attack| {
        Case::new(name, Staging { history, build })
    };
    vec![
        case(
            "class 1: the online side declares an extra root key",
            History::Fresh,
            online_side_declares_an_extra_root_key,
        ),
        case(
            "class 2: the stick swaps the new targets key in step 1",
            History::Fresh,
            stick_swaps_the_new_targets_key,
        ),
        case(
            "class 2: the stick adds a step by an unknown identity",
            History::Fresh,
            stick_adds_a_step_by_an_unknown_identity,
        ),
        case(
            "class 2: the stick adds an unsigned step",
            History::Fresh,
            stick_adds_an_unsigned_step,
        ),
        case(
            "class 3: a fork signed with the initial root key",
            History::Fresh,
            fork_signed_with_the_initial_key,
        ),
        case(
            "class 4: production targets laundered through a rotation",
            History::Offline,
            targets_laundered_through_a_rotation,
        ),
    ]
}

/// Checks one refused run; returns what is wrong, if anything.
fn check_refused(
    w: &World,
    run: &Run,
    attack: &Attack,
    mode: &str,
    before: &[(PathBuf, Option<Vec<u8>>)],
    server: &[u8],
) -> Vec<String> {
    let mut wrong = Vec::new();
    let text = format!("{}\n{}", run.stdout, run.stderr);
    if run.code == 0 {
        wrong.push(format!("{mode}: the command succeeded"));
    }
    if text.contains("panicked") {
        wrong.push(format!("{mode}: a panic instead of a refusal"));
    }
    for needle in &attack.says {
        if !text.contains(needle.as_str()) {
            wrong.push(format!("{mode}: the refusal does not say {needle:?}"));
        }
    }
    let expected = match (attack.refusal, mode) {
        (Refusal::NeedsAuthority, "--yes") => "refusing to sign",
        (Refusal::NeedsAuthority, _) => "is not ",
        (Refusal::MustNotSign, _) => "must not sign",
        (Refusal::Fork, _) => "FORK",
        (Refusal::Altered, _) => "does not verify",
    };
    if !text.contains(expected) {
        wrong.push(format!("{mode}: expected {expected:?} in the output"));
    }
    if attack.out.exists() {
        wrong.push(format!("{mode}: a response was written"));
    }
    let unchanged: Vec<&Path> = attack.unchanged.iter().map(PathBuf::as_path).collect();
    if snapshot_files(&unchanged) != before {
        wrong.push(format!("{mode}: a keys file changed"));
    }
    if w.server_state() != server {
        wrong.push(format!("{mode}: the server's state changed"));
    }
    if !wrong.is_empty() {
        wrong.push(format!("output of {}:\n{text}", run.command_line));
    }
    wrong
}

#[test]
fn every_attack_on_authority_is_refused() {
    let attacks = attacks();
    let mut runs = 0;
    run_cases("hostile_authority", &attacks, |_, staging| {
        let w = world(staging.history);
        let attack = (staging.build)(&w);
        let machine = if attack.targets_holder {
            &w.offline2
        } else {
            &w.offline
        };
        let unchanged: Vec<&Path> = attack.unchanged.iter().map(PathBuf::as_path).collect();
        let before = snapshot_files(&unchanged);
        let server = w.server_state();
        let mut yes = vec!["--yes".to_string()];
        yes.extend(attack.args.iter().cloned());
        let run = w.signer(machine, &yes);
        runs += 1;
        let mut wrong = check_refused(&w, &run, &attack, "--yes", &before, &server);
        // A careless operator on a terminal, typing `yes` at every question.
        let run = w.signer_on_terminal(machine, &attack.args, "yes\nyes\nyes\nyes\n");
        runs += 1;
        wrong.extend(check_refused(
            &w, &run, &attack, "terminal", &before, &server,
        ));
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    });
    tests::report!(
        "hostile_authority: {} attacks x 2 modes (--yes, a terminal typing yes) = {runs} signer runs refused; keys, responses and server unchanged",
        attacks.len()
    );
}

/// The same request as class 1, on a terminal where the operator checked the key id with
/// its holder and types its first 8 hex digits: the change is authorized by that typed
/// confirmation, signed, and recorded as authorized in the step (and in the audit log).
#[test]
fn a_person_who_checks_the_key_id_can_authorize_the_change() {
    let w = world(History::Fresh);
    let attack = online_side_declares_an_extra_root_key(&w);
    let extra: KeyId = attack.says[0].parse().unwrap();
    let answers = format!("{}\nyes\n", &extra.as_str()[..8]);
    let run = w.signer_on_terminal(&w.offline, &attack.args, &answers);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let resp = TransferBundle::read(&attack.out).unwrap();
    let step = resp.record().unwrap().steps.last().unwrap().clone();
    assert!(step.authorized.unwrap().contains(&Change::KeyAdded {
        role: Role::Root,
        keyid: extra.clone(),
    }));
    w.signer(&w.offline, ["audit", "show"]).ok().says(&format!(
        "change confirmed by typing {}",
        &extra.as_str()[..8]
    ));
}

/// An edit of a response's `record.json`.
type RecordEdit = Box<dyn Fn(&mut Value)>;

/// Once the courier pins the signers, a response whose steps do not verify against them
/// is not uploaded; the honest two-laptop ceremony still goes through.
#[test]
fn the_courier_refuses_steps_its_pinned_signers_did_not_sign() {
    let w = world(History::Fresh);
    let (step, _) = honest_targets_step(&w);
    let resp = w.usb("targets.resp.tufbundle");
    w.sign_with(&w.offline, &root_keys(&w), &step, &resp);
    let server = w.server_state();
    let genuine = TransferBundle::read(&resp).unwrap();
    let record = genuine.record().unwrap().clone();

    // The last step re-signed by an identity of the attacker's (content unchanged).
    let last = record.steps.len() - 1;
    let attacker = SigningIdentity::generate();
    let payload = record.steps[last]
        .attestation_payload(genuine.factory(), genuine.txid(), &record.request_sha256)
        .unwrap();
    let resigned = attacker.attest(&payload);
    // The first step with its attestation stripped.
    let cases: Vec<(&str, RecordEdit, &str)> = vec![
        (
            "a step re-signed by an unpinned identity",
            Box::new(move |r: &mut Value| {
                r["steps"][last]["attestation"] = serde_json::to_value(&resigned).unwrap();
            }),
            "which is not a pinned signer",
        ),
        (
            "a step stripped of its signature",
            Box::new(|r: &mut Value| {
                r["steps"][0].as_object_mut().unwrap().remove("attestation");
            }),
            "carries no signature of its signer",
        ),
        (
            "a step whose claim was edited",
            Box::new(|r: &mut Value| {
                r["steps"][0]["authorized"] = serde_json::json!([]);
            }),
            "was changed after",
        ),
    ];
    let cases: Vec<Case<(RecordEdit, &str)>> = cases
        .into_iter()
        .map(|(name, edit, says)| Case::new(name, (edit, says)))
        .collect();
    run_cases(
        "courier and pinned signers",
        &cases,
        |name, (edit, says)| {
            let mut p = Parts::read(&resp);
            let mut rec = p.json(shared::bundle::RECORD);
            edit(&mut rec);
            p.set_json(shared::bundle::RECORD, &rec);
            let bad = w.usb("tampered-steps.resp.tufbundle");
            p.write(&bad);
            let run = w.courier(["updates", "push", path_str(&bad), "--apply"]);
            let text = format!("{}\n{}", run.stdout, run.stderr);
            assert!(
                run.code != 0 && text.contains(says),
                "{name}: exit {}, output:\n{text}",
                run.code
            );
            assert!(
                w.server_state() == server,
                "{name}: the server's state changed"
            );
        },
    );
    // The genuine response of the honest ceremony goes through.
    w.push_apply(&resp)
        .says("pinned signer targets-holder")
        .says("pinned signer root-holder");
    assert_eq!(w.device_check().ci_version, 3);
    tests::report!(
        "hostile_authority: the courier refused {} responses with steps its pinned signers did not sign; the honest one was applied",
        cases.len()
    );
}
