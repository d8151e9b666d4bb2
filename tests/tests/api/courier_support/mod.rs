//! Shared helpers of the courier integration tests: a simulated factory, the real `courier`
//! binary (through `assert_cmd`) in an isolated home directory, and an in-process stand-in
//! for the offline signer (built on `shared`'s transforms and bundle API) so that courier
//! behaviour is tested on its own.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use factory_sim::{init_factory, InitOptions, InitReport, SimServer};
use shared::archive::Compression;
use shared::bundle::{Operation, StepInput, TransferBundle, Upload, Writer};
use shared::keys::{KeyType, PrivateKey, Signature};
use shared::metadata::{KeyOwner, SignedRoot, Timestamp};
use shared::transaction::derive_missing_prod_root;
use shared::transform;

/// A factory on a running simulator, plus the online machine's home directory.
pub struct Env {
    /// Keeps the temporary directory alive.
    pub dir: tempfile::TempDir,
    /// The simulator.
    pub server: SimServer,
    /// Factory name.
    pub factory: String,
    /// API token of the admin.
    pub token: String,
    /// What the simulator created.
    pub report: InitReport,
    /// `$HOME` of the courier.
    pub home: PathBuf,
    /// The signer's age identity (its recipient is what `config set-recipient` takes).
    pub identity: age::x25519::Identity,
}

/// Options of a test factory.
pub struct Opts {
    /// Production tags.
    pub tags: usize,
    /// Active waves.
    pub waves: usize,
    /// CI builds.
    pub targets: u64,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            tags: 1,
            waves: 0,
            targets: 3,
        }
    }
}

impl Env {
    /// A fresh factory with default options.
    pub fn new() -> Env {
        Env::with(Opts::default())
    }

    /// A fresh factory.
    pub fn with(opts: Opts) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("sim");
        let factory = "acme".to_string();
        let token = "acme-admin-token".to_string();
        let mut init = InitOptions::new(&state, &factory, &token);
        init.tags = opts.tags;
        init.waves = opts.waves;
        // These API tests drive the first rotations themselves on a factory that already has
        // production tags: the simulator's legacy state of online-only tags (a real factory
        // gets tags only after it went offline; the workflow suites use that history).
        init.legacy_online_only_tags = opts.tags > 0 || opts.waves > 0;
        init.targets = opts.targets;
        let report = init_factory(&init).unwrap();
        let server = SimServer::start(&state).unwrap();
        let home = dir.path().join("online");
        std::fs::create_dir_all(&home).unwrap();
        Env {
            dir,
            server,
            factory,
            token,
            report,
            home,
            identity: age::x25519::Identity::generate(),
        }
    }

    /// A path in the test's directory (the "USB stick").
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The courier binary, configured like a fioctl user (environment variables) against
    /// the simulator, with short retry delays.
    pub fn courier(&self) -> Command {
        self.courier_at(self.server.url())
    }

    /// Like [`Env::courier`] with another API URL.
    pub fn courier_at(&self, url: &str) -> Command {
        let mut cmd = Command::new(tests::harness::bin_path("courier"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("FIOCTL_FACTORY", &self.factory)
            .env("FIOCTL_TOKEN", &self.token)
            .env("COURIER_RETRY_DELAY_MS", "5")
            .current_dir(&self.home)
            .arg("--api-url")
            .arg(url);
        cmd
    }

    /// Runs the courier and returns (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.courier().args(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs the courier, asserts success, returns stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(
            code, 0,
            "courier {args:?} failed\n--- stdout\n{out}\n--- stderr\n{err}"
        );
        out
    }

    /// Runs the courier, asserts the exit code, returns stdout + stderr.
    #[track_caller]
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let (c, out, err) = self.run(args);
        assert_eq!(
            c, code,
            "courier {args:?}: expected exit {code}\n--- stdout\n{out}\n--- stderr\n{err}"
        );
        format!("{out}\n{err}")
    }

    /// Stores the signer's recipient in the courier config.
    pub fn set_recipient(&self) {
        let r = self.identity.to_public().to_string();
        self.ok(&["config", "set-recipient", &r]);
    }

    /// The committed factory state.
    pub fn view(&self) -> factory_sim::FactoryView {
        self.server.factory(&self.factory).unwrap()
    }
}

/// The fingerprint a courier run printed (`Fingerprint: xxxxx-...`).
pub fn printed_fingerprint(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Fingerprint: "))
        .expect("a fingerprint line")
        .trim()
        .to_string()
}

/// What the in-process signer produced.
pub struct Signed {
    /// The response bundle.
    pub response: TransferBundle,
    /// Keys created in this step.
    pub created: Vec<PrivateKey>,
}

fn owner() -> Option<KeyOwner> {
    Some(KeyOwner {
        polis_id: "test-admin".into(),
        created_at: Timestamp::now(),
        extra: BTreeMap::new(),
    })
}

/// The request's current and staged roots.
pub fn roots(
    req: &TransferBundle,
) -> (
    SignedRoot,
    Option<SignedRoot>,
    SignedRoot,
    Option<SignedRoot>,
) {
    let tx = req.parsed_transaction().unwrap();
    (
        tx.current_ci,
        tx.current_prod,
        tx.updated_ci.expect("a staged CI root"),
        tx.updated_prod,
    )
}

/// The signing identity of the responses these tests make by hand (seed `0x5e`).
pub fn test_signer_identity() -> shared::attestation::SigningIdentity {
    shared::attestation::SigningIdentity::from_seed(&[0x5e; 32])
}

/// Writes a response with the given upload.
pub fn respond(
    req: &TransferBundle,
    ops: Vec<Operation>,
    upload: Upload,
    out: &Path,
) -> TransferBundle {
    let resp = req
        .respond(
            StepInput {
                signer: Writer::new("test-signer", "0"),
                time: Timestamp::now(),
                operations: ops,
                authorized: vec![],
                upload,
            },
            &test_signer_identity(),
        )
        .unwrap();
    resp.write_atomic(out, Compression::Gzip).unwrap();
    resp
}

/// An upload of the staged roots as they are (plus signatures by `signers`); a production
/// root not staged yet is the one fioctl derives (`ParsedTransaction::effective_updated_prod`).
pub fn sign_staged(req: &TransferBundle, signers: &[&PrivateKey]) -> Upload {
    let tx = req.parsed_transaction().unwrap();
    let prod = tx.effective_updated_prod().expect("staged roots");
    let ci = tx.updated_ci.expect("a staged CI root");
    Upload {
        txid: req.txid().to_string(),
        ci_root: transform::sign_root(&ci, signers).unwrap(),
        prod_root: transform::sign_root(&prod, signers).unwrap(),
        targets_signatures: BTreeMap::new(),
        waves_signatures: BTreeMap::new(),
    }
}

/// The offline signer's first-time root rotation: decrypts the initial root key, creates a
/// new offline root key, signs both roots with both keys.
pub fn sign_first_time(env: &Env, req_path: &Path, out: &Path) -> Signed {
    let req = TransferBundle::read(req_path).unwrap();
    let sealed = req
        .first_root_secret()
        .expect("the request carries the encrypted initial key");
    let secret = age::decrypt(&env.identity, sealed).unwrap();
    let initial = PrivateKey::from_json(&secret).unwrap();
    let (_, _, draft, staged_prod) = roots(&req);
    let new = PrivateKey::generate(KeyType::Ed25519).unwrap();
    let root = transform::rotate_offline_root_key(
        &draft.signed,
        initial.keyid(),
        new.public_key(),
        owner(),
        &Timestamp::now(),
    )
    .unwrap();
    let (ci, prod) = transform::finalize(&root, staged_prod.as_ref().map(|p| &p.signed));
    let upload = Upload {
        txid: req.txid().to_string(),
        ci_root: transform::sign_root(&ci, &[&new, &initial]).unwrap(),
        prod_root: transform::sign_root(&prod, &[&new, &initial]).unwrap(),
        targets_signatures: BTreeMap::new(),
        waves_signatures: BTreeMap::new(),
    };
    let response = respond(&req, vec![Operation::FirstTimeRootRotation], upload, out);
    Signed {
        response,
        created: vec![new],
    }
}

/// The offline signer's targets key rotation (first one: adds an offline targets key), signed
/// by `root_key`; signs every production and wave targets document with the new key.
pub fn sign_targets_rotation(req_path: &Path, root_key: &PrivateKey, out: &Path) -> Signed {
    let req = TransferBundle::read(req_path).unwrap();
    let (_, _, draft, staged_prod) = roots(&req);
    let tx = req.transaction().unwrap();
    let online = tx.updated.unwrap().online_keys["targets"].clone();
    let new = PrivateKey::generate(KeyType::Ed25519).unwrap();
    let root = transform::rotate_offline_targets_key(
        &draft.signed,
        None,
        new.public_key(),
        owner(),
        &online,
    )
    .unwrap();
    let (ci, prod) = transform::finalize(&root, staged_prod.as_ref().map(|p| &p.signed));
    let mut targets_signatures: BTreeMap<String, Vec<Signature>> = BTreeMap::new();
    for (tag, doc) in req.prod_targets().unwrap() {
        targets_signatures.insert(tag, vec![transform::sign_targets(&doc, &new).unwrap()]);
    }
    let mut waves_signatures: BTreeMap<String, Vec<Signature>> = BTreeMap::new();
    for (name, doc) in req.waves().unwrap() {
        waves_signatures.insert(name, vec![transform::sign_targets(&doc, &new).unwrap()]);
    }
    let upload = Upload {
        txid: req.txid().to_string(),
        ci_root: transform::sign_root(&ci, &[root_key]).unwrap(),
        prod_root: transform::sign_root(&prod, &[root_key]).unwrap(),
        targets_signatures,
        waves_signatures,
    };
    let response = respond(&req, vec![Operation::TargetsRotation], upload, out);
    Signed {
        response,
        created: vec![new],
    }
}

/// Signs a wave request's draft with the offline targets key.
pub fn sign_wave(req_path: &Path, targets_key: &PrivateKey, out: &Path) -> TransferBundle {
    let req = TransferBundle::read(req_path).unwrap();
    let tx = req.parsed_transaction().unwrap();
    let prod = tx
        .current_prod
        .unwrap_or_else(|| derive_missing_prod_root(&tx.current_ci));
    let ci = tx.current_ci;
    let mut waves_signatures = BTreeMap::new();
    for (name, doc) in req.waves().unwrap() {
        waves_signatures.insert(
            name,
            vec![transform::sign_targets(&doc, targets_key).unwrap()],
        );
    }
    let name = waves_signatures.keys().next().unwrap().clone();
    let upload = Upload {
        txid: req.txid().to_string(),
        ci_root: ci,
        prod_root: prod,
        targets_signatures: BTreeMap::new(),
        waves_signatures,
    };
    respond(&req, vec![Operation::SignWave { name }], upload, out)
}

/// Takes the factory offline (first-time root rotation through the courier) and returns the
/// new offline root key.
pub fn take_root_offline(env: &Env) -> PrivateKey {
    env.set_recipient();
    let req = env.path("first.req.tufbundle");
    let resp = env.path("first.resp.tufbundle");
    env.ok(&[
        "rotate-offline-key",
        "--role",
        "root",
        "--first-time",
        "--bundle",
        req.to_str().unwrap(),
    ]);
    let signed = sign_first_time(env, &req, &resp);
    env.ok(&["updates", "push", resp.to_str().unwrap(), "--apply"]);
    signed.created.into_iter().next().unwrap()
}

/// A factory taken offline, a transaction started, its `sign-root` request pulled to
/// `req.tufbundle` and answered by the root key (see [`root_response`]; not pushed).
pub fn root_signed_response(env: &Env) -> (TransferBundle, PathBuf) {
    let root_key = take_root_offline(env);
    env.ok(&["updates", "init", "-m", "sign"]);
    let req = env.path("req.tufbundle");
    let pull = ["updates", "pull", "--op", "sign-root", "--bundle"];
    env.ok(&[&pull[..], &[req.to_str().unwrap()]].concat());
    root_response(env, &req, &root_key)
}

/// The `sign-root` request `req`, read back, and the path of its answer signed by
/// `root_key`, written to `resp.tufbundle`.
pub fn root_response(env: &Env, req: &Path, root_key: &PrivateKey) -> (TransferBundle, PathBuf) {
    let b = TransferBundle::read(req).unwrap();
    let resp = env.path("resp.tufbundle");
    respond(
        &b,
        vec![Operation::SignRoot],
        sign_staged(&b, &[root_key]),
        &resp,
    );
    (b, resp)
}

/// Creates the first offline targets key through the courier; returns it.
pub fn add_targets_key(env: &Env, root_key: &PrivateKey) -> PrivateKey {
    let req = env.path("targets.req.tufbundle");
    let resp = env.path("targets.resp.tufbundle");
    env.ok(&[
        "rotate-offline-key",
        "--role",
        "targets",
        "--bundle",
        req.to_str().unwrap(),
    ]);
    let signed = sign_targets_rotation(&req, root_key, &resp);
    env.ok(&["updates", "push", resp.to_str().unwrap(), "--apply"]);
    signed.created.into_iter().next().unwrap()
}
