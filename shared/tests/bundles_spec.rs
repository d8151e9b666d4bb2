//! Golden examples of `bundles-spec/`: regenerated from fixed inputs and compared byte for
//! byte, validated against the JSON Schemas, and checked to reject every flipped byte.
//!
//! `UPDATE_GOLDEN=1 cargo test -p shared --test bundles_spec` rewrites the examples and
//! `examples/FINGERPRINTS.md`. The only non-deterministic input, the age ciphertext of the
//! initial root key (`examples/inputs/first-root.sec.age`), is created once when missing
//! and then kept as a fixed input.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use shared::archive::Compression;
use shared::attestation::SigningIdentity;
use shared::authority::Change;
use shared::bundle::{
    combine, Operation, RequestInput, Sha256Digest, StepInput, TransferBundle, Upload, Writer,
};
use shared::keys::PrivateKey;
use shared::metadata::{Role, SignedRoot, SignedTargets, Timestamp};
use shared::test_support::RootBuilder;

/// Test-only age identity of the examples' signer (published on purpose: it protects
/// nothing but the example key below).
const EXAMPLE_AGE_IDENTITY: &str =
    "AGE-SECRET-KEY-1RVSSY0X5L49UKRSJK8ETE5X7EWP23JTN5TDJYEWL3J7E9KCG5AKSQ8AHJ3";

fn spec_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../bundles-spec")
}

fn examples_dir() -> PathBuf {
    spec_dir().join("examples")
}

fn update() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1")
}

fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

/// The fixed keys: every example key is an Ed25519 key from a constant seed.
struct Keys {
    initial_root: PrivateKey,
    online_targets: PrivateKey,
    snapshot: PrivateKey,
    timestamp: PrivateKey,
    offline_root: PrivateKey,
    offline_targets: PrivateKey,
}

fn keys() -> Keys {
    let k = shared::test_support::key;
    Keys {
        initial_root: k(0x01),
        online_targets: k(0x02),
        snapshot: k(0x03),
        timestamp: k(0x04),
        offline_root: k(0x11),
        offline_targets: k(0x21),
    }
}

/// The signing identity of the examples' root key holder's laptop (seed `0x31`).
fn root_holder() -> SigningIdentity {
    SigningIdentity::from_seed(&[0x31; 32])
}

/// The signing identity of the examples' targets key holder's laptop (seed `0x32`).
fn targets_holder() -> SigningIdentity {
    SigningIdentity::from_seed(&[0x32; 32])
}

/// A root document: the root key, the snapshot and timestamp keys of `ks`, and `targets` as
/// the targets role's keys with `targets_threshold`; expiring 2027-01-01.
fn root_doc(
    version: u64,
    root_key: &PrivateKey,
    targets: &[&PrivateKey],
    targets_threshold: u64,
    ks: &Keys,
) -> RootBuilder {
    RootBuilder::new(version)
        .expires_at("2027-01-01T00:00:00Z")
        .role(Role::Root, &[root_key], 1)
        .role(Role::Snapshot, &[&ks.snapshot], 1)
        .role(Role::Targets, targets, targets_threshold)
        .role(Role::Timestamp, &[&ks.timestamp], 1)
}

fn sign_root(r: &mut SignedRoot, by: &[&PrivateKey]) {
    let msg = r.canonical_signed().unwrap();
    for k in by {
        r.add_signature(k.sign(&msg));
    }
}

/// The `x-changelog` the server writes for a transaction's message.
fn changelog(msg: &str, time: &str) -> Value {
    json!({"polis-id": "5f3c0000aaaa", "message": msg, "timestamp": time})
}

fn as_string(r: &SignedRoot) -> String {
    String::from_utf8(r.to_canonical().unwrap()).unwrap()
}

fn transaction(
    first_time: bool,
    current: (&SignedRoot, Option<&SignedRoot>),
    updated: (&SignedRoot, Option<&SignedRoot>),
    ks: &Keys,
) -> Vec<u8> {
    let online = json!({
        "targets": ks.online_targets.keyid().to_string(),
        "snapshot": ks.snapshot.keyid().to_string(),
        "timestamp": ks.timestamp.keyid().to_string()
    });
    let pair = |(ci, prod): (&SignedRoot, Option<&SignedRoot>)| json!({"ci-root": as_string(ci), "prod-root": prod.map(as_string).unwrap_or_default(), "online-keys": online});
    let doc = json!({
        "status": "STARTED",
        "first-time": first_time,
        "current": pair(current),
        "updated": pair(updated),
        "change-meta": {"created-by": "5f3c0000aaaa", "created-at": "2026-03-01T09:59:00Z",
                        "updated-by": "5f3c0000aaaa", "updated-at": "2026-03-01T09:59:00Z"},
        "amendments": [],
        "issues": {"errors": [], "warnings": []}
    });
    serde_json::to_vec(&doc).unwrap()
}

fn targets_doc(version: u64, name: &str, tag: &str, signers: &[&PrivateKey]) -> Vec<u8> {
    let doc = json!({
        "signatures": [],
        "signed": {
            "_type": "Targets",
            "expires": "2026-12-31T00:00:00Z",
            "version": version,
            "targets": {
                format!("{name}-{version}"): {
                    "length": 0,
                    "hashes": {"sha256": format!("{:064x}", version)},
                    "custom": {"name": name, "version": version.to_string(), "hardwareIds": ["raspberrypi4-64"],
                               "tags": [tag], "targetFormat": "OSTREE"}
                }
            }
        }
    });
    let mut t = SignedTargets::from_json(&serde_json::to_vec(&doc).unwrap()).unwrap();
    let msg = t.canonical_signed().unwrap();
    for k in signers {
        t.add_signature(k.sign(&msg));
    }
    t.to_canonical().unwrap()
}

fn courier() -> Writer {
    Writer::new("courier", "0.1.0")
}

fn signer() -> Writer {
    Writer::new("signer", "0.1.0")
}

/// The age-encrypted initial root key: a fixed input, created once.
fn first_root_secret(ks: &Keys) -> Vec<u8> {
    let path = examples_dir().join("inputs/first-root.sec.age");
    if let Ok(bytes) = std::fs::read(&path) {
        return bytes;
    }
    assert!(
        update(),
        "{} is missing; run with UPDATE_GOLDEN=1 to create it",
        path.display()
    );
    let identity: age::x25519::Identity = EXAMPLE_AGE_IDENTITY.parse().unwrap();
    let recipient = identity.to_public();
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .unwrap();
    let mut out = Vec::new();
    let mut w = encryptor.wrap_output(&mut out).unwrap();
    w.write_all(&ks.initial_root.to_json()).unwrap();
    w.finish().unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &out).unwrap();
    out
}

/// Every example: (file name, bundle, compression).
fn examples() -> Vec<(&'static str, TransferBundle, Compression)> {
    let ks = keys();
    let mut out = Vec::new();

    // --- First-time root rotation -------------------------------------------------------
    let v1 =
        root_doc(1, &ks.initial_root, &[&ks.online_targets], 1, &ks).signed_by(&[&ks.initial_root]);
    let draft2 = root_doc(2, &ks.initial_root, &[&ks.online_targets], 1, &ks)
        .changelog(changelog(
            "Rotate TUF root offline signing key",
            "2026-03-01T09:59:00Z",
        ))
        .unsigned();
    let request = TransferBundle::new_request(RequestInput {
        factory: "acme-gadgets".into(),
        txid: "6c7d0f2a-first-time".into(),
        writer: courier(),
        created: ts("2026-03-01T10:00:00Z"),
        operations: vec![Operation::FirstTimeRootRotation],
        transaction: transaction(true, (&v1, None), (&draft2, None), &ks),
        chain: vec![v1.to_canonical().unwrap()],
        prod_targets: BTreeMap::new(),
        waves: BTreeMap::new(),
        docs_checked: false,
        first_root_secret: Some(first_root_secret(&ks)),
    })
    .unwrap();
    // The signer's new CI root: root key replaced, key owner recorded, expiry one year on.
    let (ci2, prod2) = root_doc(2, &ks.offline_root, &[&ks.online_targets], 1, &ks)
        .changelog(changelog(
            "Rotate TUF root offline signing key",
            "2026-03-01T09:59:00Z",
        ))
        .owner(&ks.offline_root, "5f3c0000aaaa", ts("2026-03-02T09:00:00Z"))
        .expires_at("2027-03-02T09:00:00Z")
        .ci_and_prod_signed_by(2, &[&ks.initial_root, &ks.offline_root]);
    let response = request
        .respond(
            StepInput {
                signer: signer(),
                time: ts("2026-03-02T09:00:00Z"),
                operations: vec![
                    Operation::FirstTimeRootRotation,
                    Operation::AddOfflineKey {
                        role: Role::Root,
                        keyid: Some(ks.offline_root.keyid().clone()),
                    },
                ],
                authorized: vec![
                    Change::KeyAdded {
                        role: Role::Root,
                        keyid: ks.offline_root.keyid().clone(),
                    },
                    Change::KeyRemoved {
                        role: Role::Root,
                        keyid: ks.initial_root.keyid().clone(),
                    },
                    Change::Expires {
                        expires: ts("2027-03-02T09:00:00Z"),
                    },
                ],
                upload: Upload {
                    txid: request.txid().to_string(),
                    ci_root: ci2.clone(),
                    prod_root: prod2.clone(),
                    targets_signatures: BTreeMap::new(),
                    waves_signatures: BTreeMap::new(),
                },
            },
            &root_holder(),
        )
        .unwrap();
    out.push(("request-first-time.tufbundle", request, Compression::None));
    out.push(("response-first-time.tufbundle", response, Compression::Gzip));

    // --- Targets key rotation by two holders ------------------------------------------
    let draft3 = |targets: &[&PrivateKey], threshold: u64| {
        root_doc(3, &ks.offline_root, targets, threshold, &ks)
            .changelog(changelog(
                "Rotate TUF targets offline signing key",
                "2026-03-10T09:59:00Z",
            ))
            // A targets rotation leaves the expiry of the root as it is.
            .expires_at("2027-03-02T09:00:00Z")
            .unsigned()
    };
    let ci3 = draft3(&[&ks.online_targets], 1);
    let prod3 = draft3(&[&ks.online_targets], 2);
    let prod_targets = BTreeMap::from([
        (
            "production".to_string(),
            targets_doc(12, "rpi", "production", &[&ks.online_targets]),
        ),
        (
            "qa".to_string(),
            targets_doc(14, "rpi", "qa", &[&ks.online_targets]),
        ),
    ]);
    let waves = BTreeMap::from([(
        "wave-2026-03".to_string(),
        targets_doc(15, "rpi", "production", &[&ks.online_targets]),
    )]);
    let request = TransferBundle::new_request(RequestInput {
        factory: "acme-gadgets".into(),
        txid: "9e41b7c0-targets".into(),
        writer: courier(),
        created: ts("2026-03-10T10:00:00Z"),
        operations: vec![
            Operation::TargetsRotation,
            Operation::SignProdTargets {
                tags: vec!["production".into(), "qa".into()],
            },
            Operation::SignWave {
                name: "wave-2026-03".into(),
            },
        ],
        transaction: transaction(false, (&ci2, Some(&prod2)), (&ci3, Some(&prod3)), &ks),
        chain: vec![v1.to_canonical().unwrap(), ci2.to_canonical().unwrap()],
        prod_targets: prod_targets
            .into_iter()
            .map(|(k, v)| (k, v.into()))
            .collect(),
        waves: waves.into_iter().map(|(k, v)| (k, v.into())).collect(),
        docs_checked: false,
        first_root_secret: None,
    })
    .unwrap();
    // Step 1, targets holder: adds the offline targets key, signs production and the wave.
    let new_ci = draft3(&[&ks.online_targets, &ks.offline_targets], 1);
    let new_prod = draft3(&[&ks.online_targets, &ks.offline_targets], 2);
    let sign_doc = |b: &TransferBundle, dir: &str, name: &str| {
        let doc =
            SignedTargets::from_json(&b.member(&format!("{dir}/{name}.json")).unwrap().unwrap())
                .unwrap();
        ks.offline_targets.sign(&doc.canonical_signed().unwrap())
    };
    let targets_key_added = vec![Change::KeyAdded {
        role: Role::Targets,
        keyid: ks.offline_targets.keyid().clone(),
    }];
    let step1_upload = Upload {
        txid: request.txid().to_string(),
        ci_root: new_ci.clone(),
        prod_root: new_prod.clone(),
        targets_signatures: BTreeMap::from([(
            "production".to_string(),
            vec![sign_doc(&request, "prod-targets", "production")],
        )]),
        waves_signatures: BTreeMap::from([(
            "wave-2026-03".to_string(),
            vec![sign_doc(&request, "waves", "wave-2026-03")],
        )]),
    };
    let step1 = request
        .respond(
            StepInput {
                signer: signer(),
                time: ts("2026-03-10T11:00:00Z"),
                operations: vec![
                    Operation::TargetsRotation,
                    Operation::AddOfflineKey {
                        role: Role::Targets,
                        keyid: Some(ks.offline_targets.keyid().clone()),
                    },
                    Operation::SignProdTargets {
                        tags: vec!["production".into()],
                    },
                    Operation::SignWave {
                        name: "wave-2026-03".into(),
                    },
                ],
                authorized: targets_key_added.clone(),
                upload: step1_upload.clone(),
            },
            &targets_holder(),
        )
        .unwrap();
    // Step 2a, root holder: signs both roots.
    let mut upload2 = step1_upload.clone();
    sign_root(&mut upload2.ci_root, &[&ks.offline_root]);
    sign_root(&mut upload2.prod_root, &[&ks.offline_root]);
    let step2 = step1
        .respond(
            StepInput {
                signer: signer(),
                time: ts("2026-03-11T08:00:00Z"),
                operations: vec![Operation::SignRoot],
                // Accepted from the targets holder's authenticated step 1.
                authorized: targets_key_added.clone(),
                upload: upload2,
            },
            &root_holder(),
        )
        .unwrap();
    // Step 2b, in parallel, targets holder again: signs the qa tag.
    let mut upload_qa = step1_upload;
    upload_qa.targets_signatures.insert(
        "qa".to_string(),
        vec![sign_doc(&request, "prod-targets", "qa")],
    );
    let step_qa = step1
        .respond(
            StepInput {
                signer: signer(),
                time: ts("2026-03-11T09:00:00Z"),
                operations: vec![Operation::SignProdTargets {
                    tags: vec!["qa".into()],
                }],
                authorized: targets_key_added,
                upload: upload_qa,
            },
            &targets_holder(),
        )
        .unwrap();
    let combined = combine(&step2, &step_qa).unwrap();
    out.push(("request-targets.tufbundle", request, Compression::None));
    out.push(("response-targets-step1.tufbundle", step1, Compression::None));
    out.push(("response-targets-step2.tufbundle", step2, Compression::Gzip));
    out.push(("response-targets-qa.tufbundle", step_qa, Compression::None));
    out.push((
        "response-targets-combined.tufbundle",
        combined,
        Compression::None,
    ));
    out
}

fn fingerprints_text(examples: &[(&str, TransferBundle, Compression)]) -> String {
    let mut s = String::from(
        "# Expected fingerprints of the golden examples\n\n\
         Generated by `shared/tests/bundles_spec.rs` (`UPDATE_GOLDEN=1` rewrites this file).\n\
         The fingerprint is the first 80 bits of the SHA-256 of the bundle's uncompressed tar\n\
         stream (see SPEC.md, \"Identity\"); it is the same for the plain and the gzip form.\n\n\
         | file | kind | compression | fingerprint | sha256 of the tar stream | answers request |\n\
         |------|------|-------------|-------------|--------------------------|-----------------|\n",
    );
    for (name, b, c) in examples {
        let comp = match c {
            Compression::None => "none",
            Compression::Gzip => "gzip",
        };
        let answers = match b.manifest().request_sha256 {
            Some(d) => d.fingerprint(),
            None => "-".to_string(),
        };
        s.push_str(&format!(
            "| `{name}` | {} | {comp} | `{}` | `{}` | {answers} |\n",
            b.kind(),
            b.fingerprint(),
            b.digest()
        ));
    }
    s
}

#[test]
fn golden_examples_are_reproduced_byte_for_byte() {
    let examples = examples();
    let dir = examples_dir();
    let mut stale = Vec::new();
    for (name, bundle, compression) in &examples {
        let bytes = bundle.to_bytes(*compression).unwrap();
        let path = dir.join(name);
        if update() {
            std::fs::write(&path, &bytes).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(bytes.as_slice()) {
            stale.push(name.to_string());
        }
    }
    let text = fingerprints_text(&examples);
    let fp_path = dir.join("FINGERPRINTS.md");
    if update() {
        std::fs::write(&fp_path, &text).unwrap();
    } else if std::fs::read_to_string(&fp_path).ok().as_deref() != Some(text.as_str()) {
        stale.push("FINGERPRINTS.md".into());
    }
    assert!(
        stale.is_empty(),
        "golden files differ from the regenerated ones: {stale:?}; if the change is intended, run UPDATE_GOLDEN=1 cargo test -p shared --test bundles_spec"
    );
}

fn golden_files() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(examples_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tufbundle"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 7,
        "expected the golden examples, found {}",
        files.len()
    );
    files
}

#[test]
fn golden_examples_read_and_match_fingerprints() {
    let fingerprints = std::fs::read_to_string(examples_dir().join("FINGERPRINTS.md")).unwrap();
    let mut by_name = BTreeMap::new();
    for (name, bytes) in golden_files() {
        let b = TransferBundle::from_bytes(&bytes).unwrap();
        let line = fingerprints
            .lines()
            .find(|l| l.starts_with(&format!("| `{name}`")))
            .unwrap_or_else(|| panic!("{name} missing from FINGERPRINTS.md"));
        assert!(line.contains(&b.fingerprint()), "{name}: {line}");
        assert!(line.contains(&b.digest().to_string()), "{name}: {line}");
        by_name.insert(name, b);
    }
    // The response/request links hold.
    let req = &by_name["request-targets.tufbundle"];
    for r in [
        "response-targets-step1.tufbundle",
        "response-targets-step2.tufbundle",
        "response-targets-qa.tufbundle",
        "response-targets-combined.tufbundle",
    ] {
        by_name[r].check_answers(req).unwrap();
    }
    by_name["response-first-time.tufbundle"]
        .check_answers(&by_name["request-first-time.tufbundle"])
        .unwrap();
    let step1 = &by_name["response-targets-step1.tufbundle"];
    let step2 = &by_name["response-targets-step2.tufbundle"];
    assert_eq!(
        step2.record().unwrap().steps[1].input_sha256,
        step1.digest()
    );
    assert_eq!(
        by_name["response-targets-combined.tufbundle"]
            .record()
            .unwrap()
            .steps
            .len(),
        3
    );
}

#[test]
fn golden_first_root_secret_decrypts_to_the_initial_key() {
    let ks = keys();
    let secret = std::fs::read(examples_dir().join("inputs/first-root.sec.age")).unwrap();
    let identity: age::x25519::Identity = EXAMPLE_AGE_IDENTITY.parse().unwrap();
    let decryptor = age::Decryptor::new(&secret[..]).unwrap();
    let mut reader = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .unwrap();
    let mut plain = Vec::new();
    reader.read_to_end(&mut plain).unwrap();
    let key = PrivateKey::from_json(&plain).unwrap();
    assert_eq!(key.keyid(), ks.initial_root.keyid());
    let b = TransferBundle::read(examples_dir().join("request-first-time.tufbundle")).unwrap();
    assert_eq!(b.first_root_secret(), Some(secret.as_slice()));
}

fn schema(name: &str) -> Value {
    let text = std::fs::read_to_string(spec_dir().join("schemas").join(name)).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn validator(name: &str) -> jsonschema::Validator {
    let common = jsonschema::Resource::from_contents(schema("common.schema.json")).unwrap();
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .with_resource(
            "https://offline-tuf.invalid/bundles/v1/common.schema.json",
            common,
        )
        .build(&schema(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn check(v: &jsonschema::Validator, doc: &Value, what: &str) {
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:#?}");
}

#[test]
fn golden_examples_validate_against_schemas() {
    let manifest = validator("manifest.schema.json");
    let transaction = validator("transaction.schema.json");
    let upload = validator("upload.schema.json");
    let record = validator("record.schema.json");
    let root = validator("root.schema.json");
    let targets = validator("targets.schema.json");
    let mut checked = 0;
    for (file, bytes) in golden_files() {
        let b = TransferBundle::from_bytes(&bytes).unwrap();
        let m = serde_json::to_value(b.manifest()).unwrap();
        check(&manifest, &m, &format!("{file}: manifest.json"));
        checked += 1;
        for name in b.member_names() {
            let data = b.member(name).unwrap();
            let v = if name == "transaction.json" {
                &transaction
            } else if name == "upload.json" {
                &upload
            } else if name == "record.json" {
                &record
            } else if name.starts_with("chain/") {
                &root
            } else if name.starts_with("prod-targets/") || name.starts_with("waves/") {
                &targets
            } else {
                assert!(name.ends_with(".age"), "{file}: unexpected member {name}");
                continue;
            };
            let doc: Value = serde_json::from_slice(&data.unwrap()).unwrap();
            check(v, &doc, &format!("{file}: {name}"));
            checked += 1;
            if name == "transaction.json" {
                // The embedded root documents are roots too.
                for pair in ["current", "updated"] {
                    for which in ["ci-root", "prod-root"] {
                        let s = doc[pair][which].as_str().unwrap_or_default();
                        if !s.is_empty() {
                            check(
                                &root,
                                &serde_json::from_str(s).unwrap(),
                                &format!("{file}: {pair}.{which}"),
                            );
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 30, "only {checked} documents checked");
}

#[test]
fn schemas_are_not_vacuous() {
    let manifest = validator("manifest.schema.json");
    let (_, bytes) = golden_files().remove(0);
    let b = TransferBundle::from_bytes(&bytes).unwrap();
    let good = serde_json::to_value(b.manifest()).unwrap();
    assert!(manifest.is_valid(&good));
    let mutations: &[fn(&mut Value)] = &[
        |m| m["format-version"] = json!(3),
        |m| m["kind"] = json!("receipt"),
        |m| m["operations"] = json!([{"op": "launch"}]),
        |m| m["operations"] = json!([{"op": "sign-root", "extra": 1}]),
        |m| m["members"][0]["name"] = json!("../etc/passwd"),
        |m| m["created"] = json!("2026-03-01 10:00:00"),
        |m| m["surprise"] = json!(true),
        |m| {
            m.as_object_mut().unwrap().remove("manifest-checksum");
        },
        |m| m["request-sha256"] = json!("00".repeat(32)),
    ];
    for (i, mutate) in mutations.iter().enumerate() {
        let mut bad = good.clone();
        mutate(&mut bad);
        assert!(!manifest.is_valid(&bad), "mutation {i} accepted");
    }
    let mut ext = good.clone();
    ext["x-vendor-note"] = json!("extensions are allowed");
    assert!(manifest.is_valid(&ext));

    // The attested steps of format 2: a claimed change of an unknown kind, an identity of
    // another key type, a missing signature are all invalid.
    let record = validator("record.schema.json");
    let (_, bytes) = golden_files()
        .into_iter()
        .find(|(n, _)| n == "response-targets-step1.tufbundle")
        .expect("step 1 example");
    let b = TransferBundle::from_bytes(&bytes).unwrap();
    let good = serde_json::to_value(b.record().unwrap()).unwrap();
    assert!(record.is_valid(&good));
    let mutations: &[fn(&mut Value)] = &[
        |r| r["steps"][0]["authorized"][0]["change"] = json!("key-stolen"),
        |r| r["steps"][0]["authorized"][0]["extra"] = json!(1),
        |r| r["steps"][0]["attestation"]["identity"] = json!("rsa:00"),
        |r| {
            r["steps"][0]["attestation"]
                .as_object_mut()
                .unwrap()
                .remove("sig");
        },
        |r| r["steps"][0]["output"]["snapshot"] = json!("00".repeat(32)),
    ];
    for (i, mutate) in mutations.iter().enumerate() {
        let mut bad = good.clone();
        mutate(&mut bad);
        assert!(!record.is_valid(&bad), "record mutation {i} accepted");
    }
}

/// Byte positions to flip: every byte of a gzip file; in a plain tar every byte of every
/// header, of `manifest.json`, of all padding and of the end marker, and every 7th byte
/// (plus the last) of the other members' data, which the manifest covers with SHA-256
/// digests (flipping each of them would only repeat the same digest check thousands of
/// times).
fn flip_positions(bytes: &[u8]) -> Vec<usize> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        return (0..bytes.len()).collect();
    }
    let mut out = Vec::new();
    let mut off = 0;
    let mut first = true;
    while off + 512 <= bytes.len() {
        let header = &bytes[off..off + 512];
        if header.iter().all(|&b| b == 0) {
            break;
        }
        let size_field = std::str::from_utf8(&header[124..135]).unwrap();
        let size = usize::from_str_radix(size_field, 8).unwrap();
        let data = off + 512;
        let end = data + size;
        let padded = end.next_multiple_of(512);
        out.extend(off..data);
        if first {
            out.extend(data..end);
        } else if size > 0 {
            out.extend((data..end).step_by(7));
            out.push(end - 1);
        }
        out.extend(end..padded);
        off = padded;
        first = false;
    }
    out.extend(off..bytes.len());
    out
}

/// Flips each chosen byte with `mask` and expects reading to fail. For gzip files a flip
/// may leave the decompressed stream unchanged (e.g. a back-reference into a run of zero
/// padding that now points elsewhere in the run, or unused padding bits): that is the same
/// bundle (same digest) and allowed; any *different* bundle must be refused.
fn assert_flips_refused(mask: u8) {
    for (file, bytes) in golden_files() {
        let original = TransferBundle::from_bytes(&bytes).unwrap().digest();
        let positions = flip_positions(&bytes);
        assert!(positions.len() > 2000, "{file}");
        let mut accepted = Vec::new();
        let mut bad = bytes.clone();
        for i in positions {
            bad[i] ^= mask;
            if let Ok(b) = TransferBundle::from_bytes(&bad) {
                let gzip = bytes.starts_with(&[0x1f, 0x8b]);
                if !gzip || b.digest() != original {
                    accepted.push(i);
                }
            }
            bad[i] ^= mask;
        }
        assert!(
            accepted.is_empty(),
            "{file}: bytes flipped with {mask:#04x} accepted: {accepted:?}"
        );
    }
}

#[test]
fn flipping_any_byte_of_a_golden_bundle_is_refused() {
    assert_flips_refused(0xff);
}

#[test]
fn flipping_the_low_bit_of_any_byte_of_a_golden_bundle_is_refused() {
    assert_flips_refused(0x01);
}

#[test]
fn fingerprint_format() {
    let d = Sha256Digest::of(b"");
    // sha256("") = e3b0c442 98fc1c14 9afbf4c8 996fb924 ...
    assert_eq!(d.fingerprint(), "e3b0c-44298-fc1c1-49afb");
}
