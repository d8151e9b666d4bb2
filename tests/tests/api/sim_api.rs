//! API-level tests of `factory-sim` over real HTTP on 127.0.0.1, with a plain HTTP client:
//! every endpoint, the validation refusals, authentication, restart persistence and faults,
//! and a first-time root rotation built with `shared` keys and metadata. The `factory-sim`
//! binary's command line is tested in its own package (`factory-sim/tests/cli.rs`).

use std::time::{Duration, Instant};

use factory_sim::{
    self as sim, FaultConfig, FaultKind, InitOptions, SimServer, TxStatus, WaveStatus,
};
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::StatusCode;
use serde_json::{json, Value};
use shared::canonical;
use shared::keys::{KeyType, PrivateKey, Signature};
use shared::metadata::{KeyOwner, Role, Root, SignedRoot, Timestamp};
use tempfile::TempDir;

const TOKEN: &str = "token-acme";

/// A running simulator with one factory (`acme`) and an HTTP client.
struct Env {
    dir: TempDir,
    server: Option<SimServer>,
    client: Client,
    token: String,
    polis_id: String,
}

fn small(dir: &std::path::Path, name: &str, token: &str) -> InitOptions {
    let mut o = InitOptions::new(dir, name, token);
    o.targets = 3;
    o.hardware_ids = 1;
    o.apps = 1;
    o
}

fn env_with(f: impl FnOnce(&mut InitOptions)) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut o = small(dir.path(), "acme", TOKEN);
    f(&mut o);
    // The server's rules for the first rotations are tested on factories that already have
    // production tags: the legacy state of online-only tags (see `factory-sim/src/init.rs`).
    o.legacy_online_only_tags = (o.tags > 0 || o.waves > 0) && o.offline_keys.is_none();
    let report = sim::init_factory(&o).unwrap();
    let server = SimServer::start(dir.path()).unwrap();
    Env {
        dir,
        server: Some(server),
        client: Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        token: TOKEN.to_string(),
        polis_id: report.polis_id,
    }
}

fn env() -> Env {
    env_with(|_| {})
}

fn r(rest: &str) -> String {
    format!("/ota/repo/acme/api/v1/user_repo{rest}")
}

fn fa(rest: &str) -> String {
    format!("/ota/factories/acme{rest}")
}

impl Env {
    fn server(&self) -> &SimServer {
        self.server.as_ref().unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server().url())
    }

    fn auth(&self, b: RequestBuilder) -> RequestBuilder {
        b.header("OSF-TOKEN", &self.token)
    }

    fn get(&self, path: &str) -> Response {
        self.auth(self.client.get(self.url(path))).send().unwrap()
    }

    fn post(&self, path: &str, body: Option<Value>) -> Response {
        let b = self.auth(self.client.post(self.url(path)));
        match body {
            Some(v) => b.json(&v).send().unwrap(),
            None => b.send().unwrap(),
        }
    }

    fn put(&self, path: &str, body: Value) -> Response {
        self.auth(self.client.put(self.url(path)))
            .json(&body)
            .send()
            .unwrap()
    }

    fn updates(&self) -> Value {
        ok(self.get(&r("/root/updates")))
    }

    fn view(&self) -> sim::FactoryView {
        self.server().factory("acme").unwrap()
    }

    fn restart(&mut self) {
        self.server.take().unwrap().stop();
        self.server = Some(SimServer::start(self.dir.path()).unwrap());
    }
}

/// Asserts a 2xx status and returns the JSON body.
fn ok(resp: Response) -> Value {
    let status = resp.status();
    let text = resp.text().unwrap();
    assert!(
        status.is_success(),
        "expected success, got {status}: {text}"
    );
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Asserts `status` and a JSON error body whose message/errors mention `needle`.
fn refused(resp: Response, status: u16, needle: &str) -> Value {
    let got = resp.status();
    let text = resp.text().unwrap();
    assert_eq!(got.as_u16(), status, "body: {text}");
    let v: Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("error body is not JSON: {text}"));
    assert!(v["message"].is_string(), "no message in {text}");
    assert!(v["errors"].is_array(), "no errors list in {text}");
    assert!(
        text.to_lowercase().contains(&needle.to_lowercase()),
        "{needle:?} not in {text}"
    );
    v
}

fn root_of(v: &Value) -> SignedRoot {
    SignedRoot::from_json(v.as_str().expect("double-encoded root string").as_bytes()).unwrap()
}

fn sign(root: &Root, keys: &[&PrivateKey]) -> SignedRoot {
    let bytes = canonical::to_canonical(root).unwrap();
    SignedRoot {
        signatures: keys.iter().map(|k| k.sign(&bytes)).collect(),
        signed: root.clone(),
        extra: Default::default(),
    }
}

fn with_prod_threshold(root: &Root, t: u64) -> Root {
    let mut p = root.clone();
    p.role_mut(Role::Targets).unwrap().threshold = t;
    p
}

fn start_tx(env: &Env, first_time: bool) -> Value {
    let resp = env.post(
        &r("/root/updates"),
        Some(json!({"message": "test change", "first-time": first_time, "shortcut": false})),
    );
    assert_eq!(resp.status(), StatusCode::CREATED);
    resp.json().unwrap()
}

/// The staged CI root with the initial root key replaced by a new offline key.
struct FirstTime {
    txid: String,
    first: PrivateKey,
    new_key: PrivateKey,
    staged: Root,
}

fn prepare_first_time(env: &Env) -> FirstTime {
    let init = start_tx(env, true);
    let first =
        PrivateKey::from_json(&serde_json::to_vec(&init["first_root.sec"]).unwrap()).unwrap();
    let st = env.updates();
    let mut staged = root_of(&st["updated"]["ci-root"]).signed;
    let new_key = PrivateKey::generate(KeyType::Ed25519).unwrap();
    let old = staged.role_keyids(Role::Root)[0].clone();
    assert_eq!(&old, first.keyid());
    staged.role_mut(Role::Root).unwrap().keyids = vec![new_key.keyid().clone()];
    staged.keys.remove(&old);
    staged
        .keys
        .insert(new_key.keyid().clone(), new_key.public_key().clone());
    staged.expires = Timestamp::now().plus_days(365);
    let owner = KeyOwner {
        polis_id: env.polis_id.clone(),
        created_at: Timestamp::now(),
        extra: Default::default(),
    };
    staged.key_owners = Some([(new_key.keyid().clone(), owner)].into_iter().collect());
    FirstTime {
        txid: init["txid"].as_str().unwrap().to_string(),
        first,
        new_key,
        staged,
    }
}

fn put_pair(env: &Env, txid: &str, ci: &SignedRoot, prod: &SignedRoot) -> Response {
    env.put(
        &r("/root/updates"),
        json!({"txid": txid, "ci-root": ci, "prod-root": prod}),
    )
}

/// Runs a complete first-time rotation; returns the new offline root key.
fn first_time_rotation(env: &Env) -> PrivateKey {
    let ft = prepare_first_time(env);
    let prod = with_prod_threshold(&ft.staged, 2);
    let signers = [&ft.new_key, &ft.first];
    ok(put_pair(
        env,
        &ft.txid,
        &sign(&ft.staged, &signers),
        &sign(&prod, &signers),
    ));
    ok(env.post(&r("/root/updates/apply"), Some(json!({"txid": ft.txid}))));
    ft.new_key
}

/// Canonical signed bytes of each document in a prod-targets / wave-targets response.
fn docs_to_sign(resp: Response) -> Vec<(String, Vec<u8>)> {
    if resp.status() == StatusCode::NOT_FOUND {
        return Vec::new();
    }
    let v: Value = ok(resp);
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, d)| (k.clone(), canonical::to_canonical(&d["signed"]).unwrap()))
        .collect()
}

/// Adds an offline targets key (signed by `root_key`), signing every production tag and
/// active wave with it; returns the new targets key.
fn targets_rotation(env: &Env, root_key: &PrivateKey) -> PrivateKey {
    let init = start_tx(env, false);
    let txid = init["txid"].as_str().unwrap().to_string();
    let st = env.updates();
    let mut ci = root_of(&st["updated"]["ci-root"]).signed;
    let tk = PrivateKey::generate(KeyType::Ed25519).unwrap();
    ci.keys.insert(tk.keyid().clone(), tk.public_key().clone());
    ci.role_mut(Role::Targets)
        .unwrap()
        .keyids
        .push(tk.keyid().clone());
    let prod = with_prod_threshold(&ci, 2);
    let sigs = |docs: Vec<(String, Vec<u8>)>| -> serde_json::Map<String, Value> {
        docs.into_iter()
            .map(|(name, bytes)| (name, json!([tk.sign(&bytes)])))
            .collect()
    };
    let tags = sigs(docs_to_sign(env.get(&fa("/prod-targets/?tag="))));
    let waves = sigs(docs_to_sign(env.get(&fa("/wave-targets/?name="))));
    ok(env.put(
        &r("/root/updates"),
        json!({"txid": txid, "ci-root": sign(&ci, &[root_key]), "prod-root": sign(&prod, &[root_key]),
               "targets-signatures": tags, "waves-signatures": waves}),
    ));
    ok(env.post(&r("/root/updates/apply"), Some(json!({"txid": txid}))));
    tk
}

// ---------------------------------------------------------------------------------------------
// Authentication and routing

#[test]
fn auth_missing_wrong_and_foreign_tokens() {
    let env = env();
    let url = env.url(&r("/root.json"));
    refused(env.client.get(&url).send().unwrap(), 401, "token");
    refused(
        env.client
            .get(&url)
            .header("OSF-TOKEN", "nope")
            .send()
            .unwrap(),
        401,
        "invalid",
    );
    let bearer = format!("Bearer {}", "dG9rZW4tYWNtZQ=="); // base64("token-acme")
    assert_eq!(
        env.client
            .get(&url)
            .header("Authorization", bearer)
            .send()
            .unwrap()
            .status(),
        200
    );
    // A valid token on another factory's path.
    let other = env.url("/ota/repo/nope/api/v1/user_repo/root.json");
    refused(
        env.client
            .get(other)
            .header("OSF-TOKEN", TOKEN)
            .send()
            .unwrap(),
        403,
        "factory",
    );
}

#[test]
fn tokens_of_another_factory_are_forbidden() {
    let dir = tempfile::tempdir().unwrap();
    sim::init_factory(&small(dir.path(), "acme", TOKEN)).unwrap();
    sim::init_factory(&small(dir.path(), "other", "token-other")).unwrap();
    // Tokens are unique across the state directory.
    assert!(sim::init_factory(&small(dir.path(), "third", TOKEN)).is_err());
    let server = SimServer::start(dir.path()).unwrap();
    let c = Client::new();
    let get = |path: &str, token: &str| {
        c.get(format!("{}{path}", server.url()))
            .header("OSF-TOKEN", token)
            .send()
            .unwrap()
    };
    assert_eq!(get("/ota/factories/acme/users/self/", TOKEN).status(), 200);
    assert_eq!(
        get("/ota/factories/other/users/self/", "token-other").status(),
        200
    );
    refused(
        get("/ota/factories/other/users/self/", TOKEN),
        403,
        "factory",
    );
    refused(
        get(
            "/ota/repo/acme/api/v1/user_repo/root/updates",
            "token-other",
        ),
        403,
        "factory",
    );
}

#[test]
fn unknown_paths_and_methods_get_json_errors() {
    let env = env();
    refused(env.get(&fa("/prod-targets")), 404, "not found"); // no trailing slash
    refused(env.get(&r("/root/updates/")), 404, "not found"); // trailing slash
    refused(env.get("/nothing/here"), 404, "not found");
    let resp = env
        .auth(env.client.delete(env.url(&r("/root/updates"))))
        .send()
        .unwrap();
    refused(resp, 405, "not allowed");
}

// ---------------------------------------------------------------------------------------------
// Read-only endpoints

#[test]
fn root_versions_and_production_fallback() {
    let env = env();
    let view = env.view();
    let latest: Value = ok(env.get(&r("/root.json")));
    assert_eq!(latest["signed"]["version"], 1);
    assert_eq!(latest["signed"]["_type"], "Root");
    assert_eq!(
        serde_json::to_value(view.ci_root().unwrap()).unwrap(),
        latest
    );
    let v1: Value = ok(env.get(&r("/1.root.json")));
    assert_eq!(v1, latest);
    // No production root before the first offline rotation: the CI root is served.
    assert_eq!(ok(env.get(&r("/root.json?production=1"))), latest);
    assert_eq!(ok(env.get(&r("/1.root.json?production=1"))), latest);
    for missing in [
        "/2.root.json",
        "/0.root.json",
        "/x.root.json",
        "/2.root.json?production=1",
        "/root.jsonx",
    ] {
        refused(env.get(&r(missing)), 404, "not found");
    }
    // Root v1 is signed by the initial (server-held) root key.
    let root = view.ci_root().unwrap();
    shared::verify::verify_self_signed(&root, "root v1").unwrap();
    assert_eq!(
        root.signed.role_keyids(Role::Root),
        std::slice::from_ref(view.initial_root_keyid())
    );
}

#[test]
fn users_self_and_ci_targets_pub() {
    let env = env();
    let me = ok(env.get(&fa("/users/self/")));
    assert_eq!(me["polis-id"], env.polis_id);
    assert!(me["name"].is_string());
    // ci-targets.pub: exactly the root.json entry of the online targets key.
    let text = env.get(&fa("/ci-targets.pub")).text().unwrap();
    let root: Value = ok(env.get(&r("/root.json")));
    let online = env.view().online_keys().targets.clone();
    let entry = &root["signed"]["keys"][online.as_str()];
    let key: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(key["keyval"]["public"], entry["keyval"]["public"]);
    assert_eq!(key["keytype"], "ED25519");
}

#[test]
fn ci_targets_by_version() {
    let env = env_with(|o| o.hardware_ids = 2);
    let t = ok(env.get(&fa("/targets/?version=2")));
    let t = t.as_object().unwrap();
    assert_eq!(t.len(), 2);
    for (name, meta) in t {
        assert!(name.ends_with("-lmp-2"), "{name}");
        assert_eq!(meta["custom"]["version"], "2");
        assert_eq!(meta["custom"]["targetFormat"], "OSTREE");
        assert!(meta["custom"]["delta-stats"]["size"].is_u64());
        assert_eq!(meta["hashes"]["sha256"].as_str().unwrap().len(), 64);
    }
    assert_eq!(ok(env.get(&fa("/targets/?version=99"))), json!({}));
    refused(env.get(&fa("/targets/")), 400, "version");
    refused(env.get(&fa("/targets/?version=abc")), 400, "version");
}

#[test]
fn prod_targets_and_wave_targets_selection() {
    let env = env_with(|o| {
        o.tags = 2;
        o.waves = 1;
    });
    let all = ok(env.get(&fa("/prod-targets/?tag=")));
    let names: Vec<&String> = all.as_object().unwrap().keys().collect();
    assert_eq!(names, ["production", "stable"]);
    assert_eq!(all["production"]["signed"]["version"], 2); // the wave is for 3
    assert_eq!(all["stable"]["signed"]["version"], 3);
    assert_eq!(all["production"]["signatures"].as_array().unwrap().len(), 1);
    let one = ok(env.get(&fa("/prod-targets/?tag=stable")));
    assert_eq!(one.as_object().unwrap().len(), 1);
    let mixed = ok(env.get(&fa("/prod-targets/?tag=nope,stable")));
    assert_eq!(mixed.as_object().unwrap().len(), 1);
    refused(env.get(&fa("/prod-targets/?tag=nope")), 404, "nope");
    // Signed by the online targets key over the canonical bytes.
    let view = env.view();
    let (sigs, bytes) = view.prod_targets_signed("stable").unwrap().unwrap();
    let online = view.ci_root().unwrap().signed.keys[&view.online_keys().targets].clone();
    online.verify(&bytes, &sigs[0]).unwrap();
    assert_eq!(
        canonical::to_canonical(&all["stable"]["signed"]).unwrap(),
        bytes
    );
    // Content-Length of the streamed response is exact.
    let resp = env.get(&fa("/prod-targets/?tag="));
    let len = resp.content_length().unwrap();
    assert_eq!(resp.bytes().unwrap().len() as u64, len);

    let waves = ok(env.get(&fa("/wave-targets/?name=")));
    assert_eq!(
        waves.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["production-v3"]
    );
    assert_eq!(waves["production-v3"]["signed"]["version"], 3);
    ok(env.get(&fa("/wave-targets/?name=production-v3")));
    refused(env.get(&fa("/wave-targets/?name=nope")), 404, "nope");

    // Asking for all of none is an empty map (fioctl sign-prod-targets' default needs it);
    // asking for a name that does not exist is a 404.
    let bare = env_with(|_| {});
    assert_eq!(
        ok(bare.get(&fa("/prod-targets/?tag="))),
        serde_json::json!({})
    );
    assert_eq!(
        ok(bare.get(&fa("/wave-targets/?name="))),
        serde_json::json!({})
    );
    refused(
        bare.get(&fa("/prod-targets/?tag=production")),
        404,
        "production",
    );
}

// ---------------------------------------------------------------------------------------------
// Root-update transactions

#[test]
fn updates_status_none() {
    let env = env();
    let st = env.updates();
    assert_eq!(st["status"], "NONE");
    assert!(st["updated"].is_null());
    let cur = root_of(&st["current"]["ci-root"]);
    assert_eq!(cur.signed.version, 1);
    assert_eq!(st["current"]["prod-root"], "");
    let online = env.view().online_keys().clone();
    assert_eq!(
        st["current"]["online-keys"]["targets"],
        online.targets.as_str()
    );
    assert_eq!(
        st["current"]["online-keys"]["snapshot"],
        online.snapshot.as_str()
    );
    assert_eq!(
        st["current"]["online-keys"]["timestamp"],
        online.timestamp.as_str()
    );
    let warnings = st["issues"]["warnings"].to_string();
    assert!(warnings.contains("online-root-key"), "{warnings}");
    // Nothing to stage, apply or cancel.
    refused(
        env.put(&r("/root/updates"), json!({"txid": ""})),
        404,
        "no TUF root updates",
    );
    refused(
        env.post(&r("/root/updates/apply"), Some(json!({"txid": ""}))),
        404,
        "no TUF root updates",
    );
    refused(
        env.post(&r("/root/updates/cancel"), None),
        404,
        "no TUF root updates",
    );
    refused(
        env.post(
            &r("/root/updates/gen-online-keys"),
            Some(json!({"txid": "", "targets": true})),
        ),
        404,
        "no TUF root updates",
    );
}

#[test]
fn init_stages_the_next_version_and_cancel_discards_it() {
    let env = env();
    refused(
        env.post(
            &r("/root/updates"),
            Some(json!({"message": "x", "first-time": false, "shortcut": false})),
        ),
        422,
        "initial online key",
    );
    refused(
        env.post(
            &r("/root/updates"),
            Some(json!({"message": "", "first-time": true, "shortcut": false})),
        ),
        400,
        "message",
    );
    refused(
        env.post(&r("/root/updates"), Some(json!("oops"))),
        400,
        "invalid",
    );
    let init = start_tx(&env, true);
    assert!(init["txid"].as_str().unwrap().len() >= 16);
    // first_root.{sec,pub}: the initial root key, as listed in root.json.
    let view = env.view();
    let root = view.ci_root().unwrap().signed;
    let first =
        PrivateKey::from_json(&serde_json::to_vec(&init["first_root.sec"]).unwrap()).unwrap();
    assert_eq!(first.keyid(), view.initial_root_keyid());
    let entry = serde_json::to_value(&root.keys[view.initial_root_keyid()]).unwrap();
    assert_eq!(init["first_root.pub"], entry);
    refused(
        env.post(
            &r("/root/updates"),
            Some(json!({"message": "again", "first-time": true, "shortcut": false})),
        ),
        409,
        "already in progress",
    );
    let st = env.updates();
    assert_eq!(st["status"], "STARTED");
    assert_eq!(st["first-time"], true);
    let staged = root_of(&st["updated"]["ci-root"]);
    assert!(staged.signatures.is_empty());
    assert_eq!(staged.signed.version, 2);
    let log = staged.signed.changelog.clone().unwrap();
    assert_eq!(log["message"], "test change");
    assert_eq!(log["polis-id"], env.polis_id);
    Timestamp::parse(log["timestamp"].as_str().unwrap()).unwrap();
    let mut expect = root.clone();
    expect.version = 2;
    expect.changelog = Some(log);
    assert_eq!(staged.signed, expect);
    assert_eq!(st["updated"]["prod-root"], "");
    assert_eq!(st["updated"]["online-keys"], st["current"]["online-keys"]);
    assert_eq!(st["change-meta"]["created-by"], env.polis_id);
    let errors = st["issues"]["errors"].to_string();
    assert!(
        errors.contains("missing-signatures") || errors.contains("no-prod-root"),
        "{errors}"
    );
    assert!(st["amendments"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["kind"] == "version"));
    assert_eq!(env.view().transaction().unwrap().status, TxStatus::Started);
    ok(env.post(&r("/root/updates/cancel"), None));
    assert_eq!(env.updates()["status"], "NONE");
    refused(
        env.post(&r("/root/updates/cancel"), None),
        404,
        "no TUF root updates",
    );
}

#[test]
fn first_time_rotation_happy_path() {
    let env = env_with(|o| o.tags = 1);
    let ft = prepare_first_time(&env);
    let prod = with_prod_threshold(&ft.staged, 2);
    let signers = [&ft.new_key, &ft.first];
    // The initiator may omit the txid.
    ok(put_pair(
        &env,
        "",
        &sign(&ft.staged, &signers),
        &sign(&prod, &signers),
    ));
    let st = env.updates();
    assert_eq!(st["issues"]["errors"], json!([]), "{}", st["issues"]);
    let warnings = st["issues"]["warnings"].to_string();
    assert!(warnings.contains("no-offline-targets-key"), "{warnings}");
    // The production tag only has the online signature: allowed until an offline targets key exists.
    assert!(warnings.contains("targets-signatures"), "{warnings}");
    assert!(st["amendments"]
        .to_string()
        .contains(ft.new_key.keyid().as_str()));
    assert_eq!(
        root_of(&st["updated"]["prod-root"])
            .signed
            .threshold(Role::Targets),
        2
    );
    ok(env.post(&r("/root/updates/apply"), Some(json!({"txid": ft.txid}))));

    // The served chains verify with the client-side verifier.
    let get_root = |path: &str| -> SignedRoot {
        SignedRoot::from_json(&env.get(&r(path)).bytes().unwrap()).unwrap()
    };
    let (ci1, ci2) = (get_root("/1.root.json"), get_root("/2.root.json"));
    let (p1, p2) = (
        get_root("/1.root.json?production=1"),
        get_root("/2.root.json?production=1"),
    );
    refused(env.get(&r("/3.root.json")), 404, "not found");
    refused(env.get(&r("/3.root.json?production=1")), 404, "not found");
    assert_eq!(p1, ci1);
    shared::verify::verify_chain(&ci1, &[ci1.clone(), ci2.clone()]).unwrap();
    shared::verify::verify_chain(&p1, &[p1.clone(), p2.clone()]).unwrap();
    assert_eq!(
        ci2.signed.role_keyids(Role::Root),
        std::slice::from_ref(ft.new_key.keyid())
    );
    assert_eq!(p2.signed.threshold(Role::Targets), 2);
    assert_eq!(ci2.signed.threshold(Role::Targets), 1);
    assert_eq!(get_root("/root.json"), ci2);
    assert_eq!(get_root("/root.json?production=1"), p2);
    let view = env.view();
    assert!(view.root_offline());
    assert_eq!(view.version(), 2);
    assert!(view.transaction().is_none());
    // The server no longer holds the initial root key.
    assert!(view.server_key(view.initial_root_keyid()).is_none());
    let st = env.updates();
    assert_eq!(st["status"], "NONE");
    assert_eq!(root_of(&st["current"]["prod-root"]), p2);
    // From now on only non-first-time transactions, which copy the prod root.
    refused(
        env.post(
            &r("/root/updates"),
            Some(json!({"message": "x", "first-time": true, "shortcut": false})),
        ),
        422,
        "already offline",
    );
    start_tx(&env, false);
    let st = env.updates();
    let staged_prod = root_of(&st["updated"]["prod-root"]);
    assert_eq!(staged_prod.signed.version, 3);
    assert_eq!(staged_prod.signed.threshold(Role::Targets), 2);
}

#[test]
fn upload_refusals() {
    let env = env();
    let ft = prepare_first_time(&env);
    let signers = [&ft.new_key, &ft.first];
    let base = ft.staged.clone();
    let put = |ci: &Root, prod: &Root| {
        put_pair(&env, &ft.txid, &sign(ci, &signers), &sign(prod, &signers))
    };
    let prod_of = |ci: &Root| with_prod_threshold(ci, 2);

    let mut v = base.clone();
    v.version = 5;
    refused(put(&v, &prod_of(&v)), 422, "version must be 2");

    let mut p = prod_of(&base);
    p.expires = p.expires.plus_days(1);
    refused(
        put(&base, &p),
        422,
        "identical except for the targets threshold",
    );

    refused(
        put(&base, &with_prod_threshold(&base, 1)),
        422,
        "at least 2",
    );

    let mut c = base.clone();
    c.role_mut(Role::Targets).unwrap().threshold = 2;
    refused(put(&c, &prod_of(&c)), 422, "targets threshold must stay 1");

    let rogue = PrivateKey::generate(KeyType::Ed25519).unwrap();
    let mut c = base.clone();
    let old = c.role_keyids(Role::Snapshot)[0].clone();
    c.role_mut(Role::Snapshot).unwrap().keyids = vec![rogue.keyid().clone()];
    c.keys.remove(&old);
    c.keys
        .insert(rogue.keyid().clone(), rogue.public_key().clone());
    refused(put(&c, &prod_of(&c)), 422, "gen-online-keys");

    let mut c = base.clone();
    c.role_mut(Role::Root)
        .unwrap()
        .keyids
        .push(rogue.keyid().clone());
    refused(put(&c, &prod_of(&c)), 422, "not in keys");

    let mut c = base.clone();
    let wrong_id = ft.new_key.keyid().clone();
    c.keys.insert(wrong_id, rogue.public_key().clone());
    refused(put(&c, &prod_of(&c)), 422, "SubjectPublicKeyInfo");

    let mut c = base.clone();
    c.extra.insert("x-extra".into(), json!(1));
    refused(put(&c, &prod_of(&c)), 422, "x-extra");

    let mut c = base.clone();
    c.changelog = Some(json!({"message": "forged"}));
    refused(put(&c, &prod_of(&c)), 422, "x-changelog");

    // Signatures by a key that is no root key, or that do not verify.
    let by_rogue = sign(&base, &[&rogue]);
    refused(
        put_pair(&env, &ft.txid, &by_rogue, &sign(&prod_of(&base), &signers)),
        422,
        "not a root key",
    );
    let mut bad = sign(&base, &signers);
    bad.signatures[0] = Signature {
        sig: ft.new_key.sign(b"something else").sig,
        ..bad.signatures[0].clone()
    };
    refused(
        put_pair(&env, &ft.txid, &bad, &sign(&prod_of(&base), &signers)),
        422,
        "does not verify",
    );

    // Production targets signatures for an unknown tag / wave.
    let body = |extra: Value| {
        let mut b = json!({"txid": ft.txid, "ci-root": sign(&base, &signers), "prod-root": sign(&prod_of(&base), &signers)});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    let s = rogue.sign(b"x");
    refused(
        env.put(
            &r("/root/updates"),
            body(json!({"targets-signatures": {"nope": [s]}})),
        ),
        422,
        "no such tag",
    );
    refused(
        env.put(
            &r("/root/updates"),
            body(json!({"waves-signatures": {"nope": [s]}})),
        ),
        422,
        "no such active wave",
    );

    // Malformed bodies.
    refused(
        env.put(
            &r("/root/updates"),
            json!({"txid": ft.txid, "ci-root": sign(&base, &signers)}),
        ),
        400,
        "prod-root",
    );
    refused(
        env.put(
            &r("/root/updates"),
            json!({"txid": ft.txid, "ci-root": {"signed": 1}, "prod-root": {}}),
        ),
        422,
        "ci-root",
    );
    refused(env.put(&r("/root/updates"), json!([1])), 400, "invalid");

    // txid rules: a wrong txid, and another user omitting it.
    refused(
        put_pair(
            &env,
            "wrong",
            &sign(&base, &signers),
            &sign(&prod_of(&base), &signers),
        ),
        400,
        "txid",
    );
    // Nothing was staged by any refused upload.
    let st = env.updates();
    assert!(root_of(&st["updated"]["ci-root"]).signatures.is_empty());
}

#[test]
fn apply_refusals() {
    let env = env();
    let ft = prepare_first_time(&env);
    let apply = || env.post(&r("/root/updates/apply"), Some(json!({"txid": ft.txid})));
    refused(apply(), 422, "no production root");
    let prod = |c: &Root| with_prod_threshold(c, 2);

    // Signed by the new key only: the current root's key is missing.
    ok(put_pair(
        &env,
        &ft.txid,
        &sign(&ft.staged, &[&ft.new_key]),
        &sign(&prod(&ft.staged), &[&ft.new_key]),
    ));
    let v = refused(apply(), 422, "current root role");
    assert!(!v.to_string().contains("new root role"), "{v}");
    // Signed by the old key only: the new root's own key is missing.
    ok(put_pair(
        &env,
        &ft.txid,
        &sign(&ft.staged, &[&ft.first]),
        &sign(&prod(&ft.staged), &[&ft.first]),
    ));
    refused(apply(), 422, "new root role");
    assert!(env.updates()["issues"]["errors"]
        .to_string()
        .contains("missing-signatures"));

    let signers = [&ft.new_key, &ft.first];
    let mut c = ft.staged.clone();
    c.expires = Timestamp::now().plus_days(-1);
    ok(put_pair(
        &env,
        &ft.txid,
        &sign(&c, &signers),
        &sign(&prod(&c), &signers),
    ));
    refused(apply(), 422, "expires in the past");
    // Far ahead is only a warning: fioctl's behaviour shows no such limit of the server.
    c.expires = Timestamp::now().plus_days(sim::MAX_EXPIRY_DAYS + 5);
    ok(put_pair(
        &env,
        &ft.txid,
        &sign(&c, &signers),
        &sign(&prod(&c), &signers),
    ));
    let issues = env.updates()["issues"].clone();
    assert!(
        issues["warnings"].to_string().contains("days ahead"),
        "{issues}"
    );
    assert!(
        !issues["errors"].to_string().contains("days ahead"),
        "{issues}"
    );

    // A first-time rotation that keeps the server-held root key.
    let mut c = ft.staged.clone();
    c.role_mut(Role::Root).unwrap().keyids = vec![ft.first.keyid().clone()];
    c.keys.remove(ft.new_key.keyid());
    c.keys
        .insert(ft.first.keyid().clone(), ft.first.public_key().clone());
    ok(put_pair(
        &env,
        &ft.txid,
        &sign(&c, &[&ft.first]),
        &sign(&prod(&c), &[&ft.first]),
    ));
    refused(apply(), 422, "offline root key");

    // Root threshold higher than the number of root keys.
    let mut c = ft.staged.clone();
    c.role_mut(Role::Root).unwrap().threshold = 2;
    ok(put_pair(
        &env,
        &ft.txid,
        &sign(&c, &signers),
        &sign(&prod(&c), &signers),
    ));
    refused(apply(), 422, "higher than the number of root keys");

    refused(
        env.post(&r("/root/updates/apply"), Some(json!({"txid": "bad"}))),
        400,
        "txid",
    );
    // Nothing was published.
    assert_eq!(env.view().version(), 1);
    assert_eq!(env.updates()["status"], "STARTED");
}

#[test]
fn other_users_need_the_txid_and_signatures_accumulate() {
    let dir = tempfile::tempdir().unwrap();
    let report = sim::init_factory(&small(dir.path(), "acme", TOKEN)).unwrap();
    sim::add_user(dir.path(), "acme", "token-bob", "Bob", "bob-polis").unwrap();
    assert!(sim::add_user(dir.path(), "acme", TOKEN, "Dup", "dup").is_err());
    let mut env = Env {
        client: Client::new(),
        server: Some(SimServer::start(dir.path()).unwrap()),
        dir,
        token: TOKEN.into(),
        polis_id: report.polis_id,
    };
    let ft = prepare_first_time(&env);
    let prod = with_prod_threshold(&ft.staged, 2);
    // The initiator uploads with the new key's signature only.
    ok(put_pair(
        &env,
        "",
        &sign(&ft.staged, &[&ft.new_key]),
        &sign(&prod, &[&ft.new_key]),
    ));
    env.token = "token-bob".into();
    assert_eq!(ok(env.get(&fa("/users/self/")))["polis-id"], "bob-polis");
    // Bob signs with the old key on top of the staged signatures; he must give the txid.
    let st = env.updates();
    let mut ci = root_of(&st["updated"]["ci-root"]);
    let mut pr = root_of(&st["updated"]["prod-root"]);
    for doc in [&mut ci, &mut pr] {
        let bytes = canonical::to_canonical(&doc.signed).unwrap();
        doc.signatures.push(ft.first.sign(&bytes));
    }
    refused(
        put_pair(&env, "", &ci, &pr),
        400,
        "only the user who started",
    );
    refused(
        env.post(&r("/root/updates/apply"), Some(json!({"txid": ""}))),
        400,
        "txid",
    );
    ok(put_pair(&env, &ft.txid, &ci, &pr));
    assert_eq!(env.updates()["change-meta"]["updated-by"], "bob-polis");
    ok(env.post(&r("/root/updates/apply"), Some(json!({"txid": ft.txid}))));
    assert_eq!(env.view().version(), 2);
}

#[test]
fn gen_online_keys_rotates_and_resigns() {
    let env = env_with(|o| o.tags = 1);
    let root_key = first_time_rotation(&env);
    let tk = targets_rotation(&env, &root_key);
    let before = env.view();
    let old_online = before.online_keys().clone();
    let init = start_tx(&env, false);
    let txid = init["txid"].as_str().unwrap();
    refused(
        env.post(
            &r("/root/updates/gen-online-keys"),
            Some(json!({"txid": txid, "key-type": "DSA", "targets": true})),
        ),
        400,
        "unsupported key type",
    );
    refused(
        env.post(
            &r("/root/updates/gen-online-keys"),
            Some(json!({"txid": txid, "key-type": "ED25519"})),
        ),
        400,
        "no role",
    );
    refused(
        env.post(
            &r("/root/updates/gen-online-keys"),
            Some(json!({"txid": "bad", "targets": true})),
        ),
        400,
        "txid",
    );
    ok(env.post(
        &r("/root/updates/gen-online-keys"),
        Some(json!({"txid": txid, "key-type": "ED25519", "targets": true, "snapshot": true})),
    ));
    let st = env.updates();
    let new_targets = st["updated"]["online-keys"]["targets"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_targets, old_online.targets.as_str());
    assert_ne!(
        st["updated"]["online-keys"]["snapshot"],
        st["current"]["online-keys"]["snapshot"]
    );
    assert_eq!(
        st["updated"]["online-keys"]["timestamp"],
        st["current"]["online-keys"]["timestamp"]
    );
    let ci = root_of(&st["updated"]["ci-root"]);
    let prod = root_of(&st["updated"]["prod-root"]);
    assert!(ci.signatures.is_empty() && prod.signatures.is_empty());
    assert!(ci
        .signed
        .role_keyids(Role::Targets)
        .iter()
        .any(|k| k.as_str() == new_targets));
    assert!(!ci.signed.keys.contains_key(&old_online.targets));
    assert!(ci.signed.role_keyids(Role::Targets).contains(tk.keyid()));
    assert_eq!(prod.signed.threshold(Role::Targets), 2);
    assert!(st["amendments"].to_string().contains("rotate-online-key"));
    // New waves are refused until the rotation is applied.
    refused(env.post(&fa("/waves/"), Some(json!({"name": "w", "version": "9", "tag": "x", "targets": {"signed": {}, "signatures": []}}))), 409, "until");
    ok(put_pair(
        &env,
        txid,
        &sign(&ci.signed, &[&root_key]),
        &sign(&prod.signed, &[&root_key]),
    ));
    ok(env.post(&r("/root/updates/apply"), Some(json!({"txid": txid}))));

    let view = env.view();
    assert_eq!(view.online_keys().targets.as_str(), new_targets);
    // ci-targets.pub follows the rotation.
    let key: Value = ok(env.get(&fa("/ci-targets.pub")));
    let root: Value = ok(env.get(&r("/root.json")));
    assert_eq!(key, root["signed"]["keys"][&new_targets]);
    // Production targets: the old online signature replaced by one of the new online key,
    // the offline signature kept.
    let (sigs, bytes) = view.prod_targets_signed("production").unwrap().unwrap();
    let prod_root = view.prod_root().unwrap().unwrap().signed;
    let ids: Vec<&str> = sigs.iter().map(|s| s.keyid.as_str()).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&new_targets.as_str()) && ids.contains(&tk.keyid().as_str()));
    for s in &sigs {
        prod_root.keys[&s.keyid].verify(&bytes, s).unwrap();
    }
    // CI targets manifest re-signed with the new online key.
    let (manifest, msigs) = view.ci_targets_manifest();
    assert_eq!(msigs[0].keyid.as_str(), new_targets);
    prod_root.keys[&msigs[0].keyid]
        .verify(&manifest, &msigs[0])
        .unwrap();
    // The server no longer holds the old online keys.
    assert!(view.server_key(&old_online.targets).is_none());
}

#[test]
fn gen_online_keys_refused_while_a_wave_is_active() {
    let env = env_with(|o| {
        o.tags = 1;
        o.waves = 1;
    });
    first_time_rotation(&env);
    let init = start_tx(&env, false);
    refused(
        env.post(
            &r("/root/updates/gen-online-keys"),
            Some(json!({"txid": init["txid"], "targets": true})),
        ),
        409,
        "wave is active",
    );
}

#[test]
fn targets_rotation_must_sign_production_targets_and_waves() {
    let env = env_with(|o| {
        o.tags = 1;
        o.waves = 1;
    });
    let root_key = first_time_rotation(&env);
    let init = start_tx(&env, false);
    let txid = init["txid"].as_str().unwrap().to_string();
    let st = env.updates();
    let mut ci = root_of(&st["updated"]["ci-root"]).signed;
    let tk = PrivateKey::generate(KeyType::Ed25519).unwrap();
    ci.keys.insert(tk.keyid().clone(), tk.public_key().clone());
    ci.role_mut(Role::Targets)
        .unwrap()
        .keyids
        .push(tk.keyid().clone());
    let prod = with_prod_threshold(&ci, 2);
    let put = |extra: Value| {
        let mut b = json!({"txid": txid, "ci-root": sign(&ci, &[&root_key]), "prod-root": sign(&prod, &[&root_key])});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        env.put(&r("/root/updates"), b)
    };
    ok(put(json!({})));
    let errors = env.updates()["issues"]["errors"].to_string();
    assert!(
        errors.contains("tag production") && errors.contains("wave production-v3"),
        "{errors}"
    );
    refused(
        env.post(&r("/root/updates/apply"), Some(json!({"txid": txid}))),
        422,
        "production-v3",
    );

    let tags = docs_to_sign(env.get(&fa("/prod-targets/?tag=")));
    let waves = docs_to_sign(env.get(&fa("/wave-targets/?name=")));
    // A signature by the online key (not an offline targets key) and a bad one are refused.
    let online = env
        .view()
        .server_key(&env.view().online_keys().targets)
        .unwrap();
    refused(
        put(json!({"targets-signatures": {"production": [online.sign(&tags[0].1)]}})),
        422,
        "not an offline targets key",
    );
    refused(
        put(json!({"targets-signatures": {"production": [tk.sign(b"other bytes")]}})),
        422,
        "does not verify",
    );
    // Sign the tag only: the wave still blocks apply.
    ok(put(
        json!({"targets-signatures": {"production": [tk.sign(&tags[0].1)]}}),
    ));
    refused(
        env.post(&r("/root/updates/apply"), Some(json!({"txid": txid}))),
        422,
        "wave production-v3",
    );
    // Wave signatures merge with the staged tag signatures (the tag is not re-sent).
    ok(put(
        json!({"waves-signatures": {"production-v3": [tk.sign(&waves[0].1)]}}),
    ));
    assert_eq!(env.updates()["issues"]["errors"], json!([]));
    ok(env.post(&r("/root/updates/apply"), Some(json!({"txid": txid}))));
    let view = env.view();
    for (sigs, bytes) in [
        view.prod_targets_signed("production").unwrap().unwrap(),
        view.wave_targets_signed("production-v3").unwrap().unwrap(),
    ] {
        assert_eq!(sigs.len(), 2);
        let keys = &view.prod_root().unwrap().unwrap().signed.keys;
        for s in &sigs {
            keys[&s.keyid].verify(&bytes, s).unwrap();
        }
    }
    let served = ok(env.get(&fa("/prod-targets/?tag=production")));
    assert_eq!(
        served["production"]["signatures"].as_array().unwrap().len(),
        2
    );
}

#[test]
fn cancel_is_refused_while_applying() {
    let env = env();
    let ft = prepare_first_time(&env);
    let prod = with_prod_threshold(&ft.staged, 2);
    let signers = [&ft.new_key, &ft.first];
    ok(put_pair(
        &env,
        &ft.txid,
        &sign(&ft.staged, &signers),
        &sign(&prod, &signers),
    ));
    env.server().inject_fault(FaultKind::ApplyInterrupt, None);
    refused(
        env.post(&r("/root/updates/apply"), Some(json!({"txid": ft.txid}))),
        503,
        "re-run apply",
    );
    assert_eq!(env.updates()["status"], "APPLYING");
    assert_eq!(env.view().version(), 1);
    refused(
        env.post(&r("/root/updates/cancel"), None),
        409,
        "being applied",
    );
    refused(
        put_pair(
            &env,
            &ft.txid,
            &sign(&ft.staged, &signers),
            &sign(&prod, &signers),
        ),
        409,
        "being applied",
    );
    ok(env.post(&r("/root/updates/apply"), Some(json!({"txid": ft.txid}))));
    assert_eq!(env.updates()["status"], "NONE");
    assert_eq!(env.view().version(), 2);
}

// ---------------------------------------------------------------------------------------------
// Waves

/// A wave body for `version` on `tag`: current prod targets + the CI build, signed by `key`.
fn wave_body(env: &Env, name: &str, version: u64, tag: &str, key: &PrivateKey) -> (Value, Vec<u8>) {
    let prod = env.get(&fa(&format!("/prod-targets/?tag={tag}")));
    let mut targets = if prod.status() == StatusCode::OK {
        ok(prod)[tag]["signed"]["targets"].clone()
    } else {
        json!({})
    };
    let ci = ok(env.get(&fa(&format!("/targets/?version={version}"))));
    for (n, mut meta) in ci.as_object().unwrap().clone() {
        meta["custom"]["tags"] = json!([tag]);
        targets[n] = meta;
    }
    let signed = json!({"_type": "Targets", "expires": Timestamp::now().plus_days(30).to_string(),
                        "targets": targets, "version": version});
    let bytes = canonical::to_canonical(&signed).unwrap();
    let body = json!({"name": name, "version": version.to_string(), "tag": tag,
                      "targets": {"signed": signed, "signatures": [key.sign(&bytes)]}});
    (body, bytes)
}

#[test]
fn waves_lifecycle_and_refusals() {
    let env = env_with(|o| {
        o.tags = 1;
        o.waves = 1;
        o.targets = 4;
    });
    let rogue = PrivateKey::generate(KeyType::Ed25519).unwrap();
    // Without an offline targets key no wave can be created.
    let (body, _) = wave_body(&env, "early", 4, "beta", &rogue);
    refused(
        env.post(&fa("/waves/"), Some(body)),
        422,
        "no offline targets key",
    );
    let root_key = first_time_rotation(&env);
    let tk = targets_rotation(&env, &root_key);

    let list = ok(env.get(&fa("/waves/")));
    assert_eq!(list["total"], 1);
    assert_eq!(list["waves"][0]["name"], "production-v4");
    assert_eq!(list["waves"][0]["status"], "active");
    // One active wave per tag.
    let (body, _) = wave_body(&env, "w-other", 4, "production", &tk);
    refused(env.post(&fa("/waves/"), Some(body)), 409, "already active");
    ok(env.post(&fa("/waves/production-v4/cancel/"), None));
    refused(
        env.post(&fa("/waves/production-v4/cancel/"), None),
        409,
        "canceled",
    );
    refused(
        env.post(&fa("/waves/production-v4/complete/"), None),
        409,
        "canceled",
    );
    refused(env.post(&fa("/waves/nope/cancel/"), None), 404, "not found");

    // Validation refusals.
    let (body, _) = wave_body(&env, "production-v4", 4, "production", &tk);
    refused(env.post(&fa("/waves/"), Some(body)), 409, "already exists");
    let (body, _) = wave_body(&env, "w3", 3, "production", &tk);
    refused(
        env.post(&fa("/waves/"), Some(body)),
        422,
        "lower than or equal",
    );
    let (body, _) = wave_body(&env, "w4", 4, "production", &rogue);
    refused(
        env.post(&fa("/waves/"), Some(body)),
        422,
        "not an offline targets key",
    );
    let online = env
        .view()
        .server_key(&env.view().online_keys().targets)
        .unwrap();
    let (body, _) = wave_body(&env, "w4", 4, "production", &online);
    refused(
        env.post(&fa("/waves/"), Some(body)),
        422,
        "not an offline targets key",
    );
    let (mut body, _) = wave_body(&env, "w4", 4, "production", &tk);
    body["targets"]["signatures"][0]["sig"] = json!(tk.sign(b"x").sig);
    refused(env.post(&fa("/waves/"), Some(body)), 422, "does not verify");
    let (mut body, _) = wave_body(&env, "w4", 4, "production", &tk);
    body["version"] = json!("5");
    refused(
        env.post(&fa("/waves/"), Some(body)),
        422,
        "differs from the wave version",
    );
    let (mut body, _) = wave_body(&env, "w4", 4, "production", &tk);
    body["version"] = json!("four");
    refused(env.post(&fa("/waves/"), Some(body)), 400, "32-bit");
    let (mut body, _) = wave_body(&env, "w4", 4, "production", &tk);
    body["name"] = json!("a/b");
    refused(env.post(&fa("/waves/"), Some(body)), 400, "wave name");
    // A target that is not a CI target.
    let (mut body, _) = wave_body(&env, "w4", 4, "production", &tk);
    let mut signed = body["targets"]["signed"].clone();
    signed["targets"]["forged-4"] =
        json!({"length": 1, "hashes": {"sha256": "00"}, "custom": {"version": "4"}});
    let bytes = canonical::to_canonical(&signed).unwrap();
    body["targets"] = json!({"signed": signed, "signatures": [tk.sign(&bytes)]});
    refused(env.post(&fa("/waves/"), Some(body)), 422, "not a CI target");

    // A valid wave: the server adds its online signature.
    let (body, bytes) = wave_body(&env, "w4", 4, "production", &tk);
    let resp = env.post(&fa("/waves/"), Some(body));
    assert_eq!(resp.status(), StatusCode::CREATED);
    let text = env.get(&fa("/waves/w4/?show-targets=1")).text().unwrap();
    let canonical_signed = String::from_utf8(bytes.clone()).unwrap();
    assert!(
        text.contains(&format!("\"signed\":{canonical_signed}")),
        "targets.signed is not served canonically"
    );
    let w: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(w["status"], "active");
    assert_eq!(w["version"], "4");
    let sigs = w["targets"]["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 2);
    assert_eq!(sigs[0]["keyid"], env.view().online_keys().targets.as_str());
    let plain = ok(env.get(&fa("/waves/w4/")));
    assert!(plain.get("targets").is_none());
    refused(env.get(&fa("/waves/nope/")), 404, "not found");

    // Sign: offline keys only; the same key replaces its signature.
    let sig = tk.sign(&bytes);
    ok(env.post(&fa("/waves/w4/sign/"), Some(json!({"signatures": [sig]}))));
    refused(
        env.post(
            &fa("/waves/w4/sign/"),
            Some(json!({"signatures": [online.sign(&bytes)]})),
        ),
        422,
        "not an offline",
    );
    refused(
        env.post(&fa("/waves/w4/sign/"), Some(json!({"signatures": []}))),
        422,
        "at least one",
    );
    assert_eq!(
        env.view()
            .wave_targets_signed("w4")
            .unwrap()
            .unwrap()
            .0
            .len(),
        2
    );
    let wt = ok(env.get(&fa("/wave-targets/?name=")));
    assert_eq!(wt.as_object().unwrap().keys().collect::<Vec<_>>(), ["w4"]);

    // Complete: the wave targets become the production targets of the tag.
    ok(env.post(&fa("/waves/w4/complete/"), None));
    refused(env.post(&fa("/waves/w4/complete/"), None), 409, "complete");
    refused(
        env.post(
            &fa("/waves/w4/sign/"),
            Some(json!({"signatures": [tk.sign(&bytes)]})),
        ),
        409,
        "not active",
    );
    let prod = ok(env.get(&fa("/prod-targets/?tag=production")));
    assert_eq!(prod["production"]["signed"]["version"], 4);
    assert_eq!(
        canonical::to_canonical(&prod["production"]["signed"]).unwrap(),
        bytes
    );
    let waves = env.view().waves();
    assert_eq!(
        waves.iter().map(|w| w.status).collect::<Vec<_>>(),
        [WaveStatus::Canceled, WaveStatus::Complete]
    );
    assert_eq!(
        ok(env.get(&fa("/wave-targets/?name="))),
        serde_json::json!({})
    );

    // A wave for a new tag (no production targets yet).
    let (body, _) = wave_body(&env, "beta-4", 4, "beta", &tk);
    assert_eq!(
        env.post(&fa("/waves/"), Some(body)).status(),
        StatusCode::CREATED
    );

    // List: newest first, filters, paging.
    let all = ok(env.get(&fa("/waves/?limit=2&page=1")));
    assert_eq!(all["total"], 3);
    assert_eq!(all["waves"][0]["name"], "beta-4");
    assert!(all["next"].as_str().unwrap().contains("page=2"));
    let p2 = ok(env.get(&fa("/waves/?limit=2&page=2")));
    assert_eq!(p2["waves"].as_array().unwrap().len(), 1);
    assert!(p2["next"].is_null());
    assert_eq!(ok(env.get(&fa("/waves/?status=complete")))["total"], 1);
    assert_eq!(ok(env.get(&fa("/waves/?tag=beta")))["total"], 1);
    refused(env.get(&fa("/waves/?status=weird")), 400, "status");
    refused(env.get(&fa("/waves/?limit=0")), 400, "limit");
}

// ---------------------------------------------------------------------------------------------
// Persistence, faults, CLI

#[test]
fn restart_keeps_everything() {
    let mut env = env_with(|o| o.tags = 1);
    let root_key = first_time_rotation(&env);
    let init = start_tx(&env, false);
    let before_prod = ok(env.get(&fa("/prod-targets/?tag=")));
    env.restart();
    let st = env.updates();
    assert_eq!(st["status"], "STARTED");
    assert_eq!(
        env.view().transaction().unwrap().txid,
        init["txid"].as_str().unwrap()
    );
    assert_eq!(ok(env.get(&fa("/prod-targets/?tag="))), before_prod);
    assert_eq!(ok(env.get(&r("/2.root.json")))["signed"]["version"], 2);
    // Finish the transaction after the restart, restart again, and find the result.
    let ci = root_of(&st["updated"]["ci-root"]).signed;
    let prod = root_of(&st["updated"]["prod-root"]).signed;
    ok(put_pair(
        &env,
        init["txid"].as_str().unwrap(),
        &sign(&ci, &[&root_key]),
        &sign(&prod, &[&root_key]),
    ));
    ok(env.post(
        &r("/root/updates/apply"),
        Some(json!({"txid": init["txid"]})),
    ));
    env.restart();
    assert_eq!(ok(env.get(&r("/root.json")))["signed"]["version"], 3);
    assert_eq!(env.updates()["status"], "NONE");
    // No stray temp files or unreferenced blobs are left behind.
    let blobs = std::fs::read_dir(env.dir.path().join("factories/acme/blobs"))
        .unwrap()
        .count();
    assert_eq!(blobs, 1);
}

#[test]
fn faults_never_leave_half_made_changes() {
    let env = env();
    let s = env.server();
    let init_body = json!({"message": "m", "first-time": true, "shortcut": false});

    s.inject_fault(FaultKind::Status500, Some("/root/updates"));
    refused(
        env.post(&r("/root/updates"), Some(init_body.clone())),
        500,
        "simulated fault",
    );
    assert!(env.view().transaction().is_none());

    s.inject_fault(FaultKind::Reset, Some("/root/updates"));
    assert!(env
        .auth(env.client.post(env.url(&r("/root/updates"))))
        .json(&init_body)
        .send()
        .is_err());
    assert!(
        env.view().transaction().is_none(),
        "reset happens before handling"
    );

    s.inject_fault(FaultKind::ResetAfter, Some("/root/updates"));
    assert!(env
        .auth(env.client.post(env.url(&r("/root/updates"))))
        .json(&init_body)
        .send()
        .is_err());
    assert!(
        env.view().transaction().is_some(),
        "reset-after loses only the response"
    );

    s.inject_fault(FaultKind::Truncate, Some("root.json"));
    let resp = env.get(&r("/root.json"));
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().is_err(), "a truncated body must fail to read");

    s.set_faults(Some(
        FaultConfig::parse("rate=1,kinds=delay,delay-ms=300").unwrap(),
    ));
    let t = Instant::now();
    ok(env.get(&fa("/users/self/")));
    assert!(t.elapsed() >= Duration::from_millis(300));
    s.set_faults(Some(
        FaultConfig::parse("rate=1,kinds=500,seed=9,match=/users/").unwrap(),
    ));
    refused(env.get(&fa("/users/self/")), 500, "simulated fault");
    ok(env.get(&r("/root.json")));
    s.set_faults(None);
    ok(env.get(&fa("/users/self/")));
    assert_eq!(s.faults_injected(), 6);
}

#[test]
fn init_is_reproducible_from_the_seed() {
    let now = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
    let make = |seed: u64| {
        let dir = tempfile::tempdir().unwrap();
        let mut o = small(dir.path(), "acme", TOKEN);
        o.seed = seed;
        o.now = Some(now);
        o.tags = 2;
        o.waves = 1;
        // The offline history too: the keys tarballs and roots v2, v3 come from the seed.
        o.offline_keys = Some(dir.path().join("admin"));
        let report = sim::init_factory(&o).unwrap();
        let view = sim::FactoryView::load(dir.path(), "acme").unwrap();
        let ci = std::fs::read(dir.path().join("factories/acme/ci-targets.jsonl")).unwrap();
        let history = report.offline.expect("offline history");
        assert_eq!(view.version(), 3);
        (
            report.root_keyid,
            view.ci_root_json().to_string(),
            view.prod_targets_signed("stable").unwrap(),
            ci,
            std::fs::read(&history.root_keys).unwrap(),
            std::fs::read(&history.targets_keys).unwrap(),
        )
    };
    assert_eq!(make(5), make(5));
    assert_ne!(make(5).0, make(6).0);
    let dir = tempfile::tempdir().unwrap();
    let mut o = small(dir.path(), "acme", TOKEN);
    o.tags = 1;
    let err = sim::init_factory(&o).unwrap_err().to_string();
    assert!(
        err.contains("--offline-keys"),
        "tags need an offline history: {err}"
    );
    o.tags = 0;
    o.waves = 1;
    assert!(sim::init_factory(&o).is_err(), "waves need tags");
    o.waves = 0;
    sim::init_factory(&o).unwrap();
    assert!(sim::init_factory(&o).is_err(), "factory exists");
    assert!(sim::init_factory(&small(dir.path(), "../x", "t2")).is_err());
}
