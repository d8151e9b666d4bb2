//! In-process tests of every operation and every refusal, on bundles built from a fake
//! factory (`crate::testutil`).

use std::path::{Path, PathBuf};

use shared::archive::Compression;
use shared::bundle::{Operation, TransferBundle};
use shared::keys::KeyId;
use shared::metadata::{Role, SignedRoot, Timestamp};
use shared::tarball::KeysTarball;
use shared::test_support::cases::{run_cases, Case};
use shared::transform;
use shared::verify;

use std::cell::RefCell;

use rand::SeedableRng as _;

use super::combine::combine;
use super::expert::{add_offline_key, delete_offline_key, set_threshold};
use super::rotate::rotate_offline_key;
use super::sign::{sign, sign_prod_targets, sign_wave};
use super::*;
use crate::cli::{
    AddKeyArgs, BundleIo, CheckArgs, CombineArgs, DeleteKeyArgs, KeyTypeArg, OfflineRole,
    RotateArgs, SignArgs, SignTargetsArgs, SignWaveArgs, ThresholdArgs,
};
use crate::keysource::{KeyArgs, KeySource};
use crate::keystore::PassphraseArgs;
use crate::state::StateDir;
use crate::testutil::*;
use crate::trust;

/// A temporary offline machine: state directory with identity and a pin for "acme", and
/// the seeded random number generator every run on it draws from (so its keys are the same
/// in every test run, and different from one run to the next).
struct Env {
    tmp: tempfile::TempDir,
    state: StateDir,
    recipient: String,
    rng: RefCell<rand::rngs::StdRng>,
}

impl Env {
    fn new(f: &Factory) -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::at(tmp.path().join("state"));
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let recipient = crate::identity::init(state.path(), false, &f.now, &mut rng)
            .unwrap()
            .recipient;
        let env = Env {
            tmp,
            state,
            recipient,
            rng: RefCell::new(rng),
        };
        env.pin(&f.chain[0]);
        env
    }

    fn pin(&self, root: &SignedRoot) {
        let file = self.path("pin-root.json");
        std::fs::write(&file, root.to_json().unwrap()).unwrap();
        let _ = std::fs::remove_file(trust::pin_path(&self.state, Some("acme")).unwrap());
        let (mut ui, _) = Ui::scripted("", false, true);
        trust::init(
            &self.state,
            &mut ui,
            &file,
            Some("acme"),
            true,
            &Timestamp::now(),
        )
        .unwrap();
    }

    fn pinned_version(&self) -> u64 {
        trust::load_pin(&self.state, "acme")
            .unwrap()
            .1
            .root
            .signed
            .version
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn write(&self, name: &str, b: &TransferBundle) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, b.to_bytes(Compression::Gzip).unwrap()).unwrap();
        p
    }

    /// `rotate-offline-key` with `--yes` at `now` (bundle `req` to `out`), returning its
    /// result and output.
    fn rotate(
        &self,
        now: Timestamp,
        (role, first): (OfflineRole, bool),
        keys: Option<&Path>,
        tk: Option<&Path>,
        (req, out): (&Path, &Path),
    ) -> (Result<Outcome>, String) {
        self.run(true, now, |ctx| {
            rotate_offline_key(ctx, &rotate_args(role, first, keys, tk, io(req, out)))
        })
    }

    /// Runs `f` with `--yes` (or no terminal and no `--yes`), returning its result and output.
    fn run<T>(
        &self,
        yes: bool,
        now: Timestamp,
        f: impl FnOnce(&mut Ctx<'_>) -> Result<T>,
    ) -> (Result<T>, String) {
        if yes {
            return self.run_on_terminal(None, now, f);
        }
        let (mut ui, out) = Ui::scripted("", false, false);
        let r = self.with_ctx(&mut ui, now, f);
        (r, out.text())
    }

    /// Runs `f` on a terminal answering `answers` (`None`: no terminal, `--yes`).
    fn run_on_terminal<T>(
        &self,
        answers: Option<&str>,
        now: Timestamp,
        f: impl FnOnce(&mut Ctx<'_>) -> Result<T>,
    ) -> (Result<T>, String) {
        let (mut ui, out) = match answers {
            Some(a) => Ui::scripted(a, true, false),
            None => Ui::scripted("", false, true),
        };
        let r = self.with_ctx(&mut ui, now, f);
        (r, out.text())
    }

    /// Runs `f` in a context on this machine at `now`, talking through `ui`.
    fn with_ctx<T>(
        &self,
        ui: &mut Ui,
        now: Timestamp,
        f: impl FnOnce(&mut Ctx<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut rng = self.rng.borrow_mut();
        let mut ctx = Ctx::new(self.state.clone(), ui, now, &mut *rng);
        f(&mut ctx)
    }

    fn sealed_first_root(&self, f: &Factory) -> Vec<u8> {
        crate::identity::encrypt_to(&self.recipient, &f.first_root.to_json()).unwrap()
    }
}

fn io(bundle: &Path, out: &Path) -> BundleIo {
    BundleIo {
        bundle: bundle.to_path_buf(),
        out: out.to_path_buf(),
    }
}

fn rotate_args(
    role: OfflineRole,
    first: bool,
    keys: Option<&Path>,
    tk: Option<&Path>,
    io: BundleIo,
) -> RotateArgs {
    RotateArgs {
        role,
        first_time: first,
        lost_key: None,
        src: ka(keys.map(Path::to_path_buf), tk.map(Path::to_path_buf)),
        key_type: KeyTypeArg::Ed25519,
        io,
        check: CheckArgs::default(),
    }
}

fn sign_args(keys: &[&Path], io: BundleIo) -> SignArgs {
    SignArgs {
        src: ka(
            keys.iter().map(|p| p.to_path_buf()).collect::<Vec<_>>(),
            None,
        ),
        io,
        check: CheckArgs::default(),
    }
}

/// Key-source arguments from tarball paths (`keys` may be a Vec for `sign`).
fn ka(keys: impl IntoKeys, tk: Option<PathBuf>) -> KeyArgs {
    KeyArgs {
        keys: keys.into_keys(),
        targets_keys: tk.map(KeySource::Tarball),
        ..KeyArgs::default()
    }
}

trait IntoKeys {
    fn into_keys(self) -> Vec<KeySource>;
}

impl IntoKeys for Option<PathBuf> {
    fn into_keys(self) -> Vec<KeySource> {
        self.into_iter().map(KeySource::Tarball).collect()
    }
}

impl IntoKeys for Vec<PathBuf> {
    fn into_keys(self) -> Vec<KeySource> {
        self.into_iter().map(KeySource::Tarball).collect()
    }
}

fn response(p: &Path) -> TransferBundle {
    TransferBundle::read(p).unwrap()
}

/// Applies a response on the fake server: new roots, and new targets signatures.
fn apply(f: &mut Factory, p: &Path) {
    let b = response(p);
    let up = b.upload().unwrap().clone();
    f.apply(up.ci_root, up.prod_root);
    for (tag, sigs) in up.targets_signatures {
        let doc = f.prod_targets.get_mut(&tag).unwrap();
        for s in sigs {
            doc.add_signature(s);
        }
    }
    for (w, sigs) in up.waves_signatures {
        let doc = f.waves.get_mut(&w).unwrap();
        for s in sigs {
            doc.add_signature(s);
        }
    }
}

/// The current root's private key from a keys file.
fn current_root_key(keys: &Path, f: &Factory) -> shared::keys::PrivateKey {
    KeysTarball::read(keys)
        .unwrap()
        .find_signers(
            &f.current().signed,
            f.current().signed.role_keyids(Role::Root),
        )
        .unwrap()
        .remove(0)
        .key
}

/// First-time rotation through the signer; returns (env, root keys path).
fn first_time(f: &mut Factory) -> (Env, PathBuf) {
    let env = Env::new(f);
    let req = f.request(
        vec![Operation::FirstTimeRootRotation],
        Some(env.sealed_first_root(f)),
    );
    let req = env.write("req1.tufbundle", &req);
    let keys = env.path("root.keys.tgz");
    let out = env.path("resp1.tufbundle");
    let (r, text) = env.rotate(
        f.now,
        (OfflineRole::Root, true),
        Some(&keys),
        None,
        (&req, &out),
    );
    let outcome = r.unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(outcome.created.len(), 1);
    apply(f, &out);
    (env, keys)
}

#[test]
fn first_time_root_rotation() {
    let mut f = Factory::new();
    let env = Env::new(&f);
    let req = f.request(
        vec![Operation::FirstTimeRootRotation],
        Some(env.sealed_first_root(&f)),
    );
    let req = env.write("req.tufbundle", &req);
    let keys = env.path("root.keys.tgz");
    let out = env.path("resp.tufbundle");
    let args = rotate_args(OfflineRole::Root, true, Some(&keys), None, io(&req, &out));

    // No terminal and no --yes: refused, nothing written.
    let (r, _) = env.run(false, f.now, |ctx| rotate_offline_key(ctx, &args));
    assert!(matches!(r, Err(SignerError::NeedsConfirmation)), "{r:?}");
    assert!(!keys.exists() && !out.exists());

    let (r, text) = env.run(true, f.now, |ctx| rotate_offline_key(ctx, &args));
    let o = r.unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(
        text.contains("added: your command (rotate-offline-key --role root --first-time)"),
        "{text}"
    );
    // The keys file holds the initial key and the new one.
    let tb = KeysTarball::read(&keys).unwrap();
    assert!(tb.contains(shared::tarball::FIRST_ROOT_PUB));
    assert!(tb.contains(shared::tarball::FIRST_ROOT_SEC));
    let new_id = o.created[0].0.clone();
    assert!(tb.private_key(&new_id).unwrap().is_some());
    // The response: roots signed by the initial and the new key, one year expiry.
    let b = response(&out);
    let up = b.upload().unwrap();
    assert_eq!(
        up.ci_root.signed.role_keyids(Role::Root),
        std::slice::from_ref(&new_id)
    );
    assert_eq!(up.ci_root.signed.version, 2);
    assert_eq!(up.ci_root.signed.expires, transform::one_year_after(&f.now));
    assert_eq!(up.prod_root.signed.threshold(Role::Targets), 2);
    verify::verify_root_step(f.current(), &up.ci_root).unwrap();
    verify::verify_root_step(f.current(), &up.prod_root).unwrap();
    assert_eq!(
        up.ci_root.signatures[0].keyid, new_id,
        "new key signs first"
    );
    assert_eq!(b.record().unwrap().steps.len(), 1);
    assert_eq!(
        b.record().unwrap().steps[0].operations,
        vec![Operation::FirstTimeRootRotation]
    );
    // Audit: key created, four... at least the key and the two root signatures.
    let log = std::fs::read_to_string(crate::audit::log_path(env.state.path())).unwrap();
    assert!(
        log.contains("key-created")
            && log.contains("signature-made")
            && log.contains("bundle-written")
    );
    // The pin does not move to a draft.
    assert_eq!(env.pinned_version(), 1);
    assert!(!o.pin_advanced);

    // Running it again: this signer remembers it took the initial key offline already.
    let out2 = env.path("resp2.tufbundle");
    let (r, _) = env.rotate(
        f.now,
        (OfflineRole::Root, true),
        Some(&keys),
        None,
        (&req, &out2),
    );
    assert!(
        matches!(r, Err(SignerError::Refused(ref m)) if m.contains("already took factory acme's initial root key offline")),
        "{r:?}"
    );

    // After the server applied it, the next bundle advances the pin.
    apply(&mut f, &out);
    f.add_prod_targets("main", 3);
    let req2 = env.write(
        "req2.tufbundle",
        &f.request(vec![Operation::TargetsRotation], None),
    );
    let out3 = env.path("resp3.tufbundle");
    let tk = env.path("targets.keys.tgz");
    let (r, text) = env.rotate(
        f.now,
        (OfflineRole::Targets, false),
        Some(&keys),
        Some(&tk),
        (&req2, &out3),
    );
    let o = r.unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(o.pin_advanced);
    assert_eq!(env.pinned_version(), 2);
}

#[test]
fn first_time_refusals() {
    let f = Factory::new();
    let env = Env::new(&f);
    let keys = env.path("root.keys.tgz");
    let out = env.path("resp.tufbundle");

    // Bundle asks for the first time but --first-time is missing.
    let req = env.write(
        "a",
        &f.request(
            vec![Operation::FirstTimeRootRotation],
            Some(env.sealed_first_root(&f)),
        ),
    );
    let (r, _) = env.rotate(
        f.now,
        (OfflineRole::Root, false),
        Some(&keys),
        None,
        (&req, &out),
    );
    assert!(matches!(r, Err(SignerError::Usage(_))), "{r:?}");

    // Secret encrypted to another identity.
    let other = age::x25519::Identity::generate().to_public().to_string();
    let sealed = crate::identity::encrypt_to(&other, &f.first_root.to_json()).unwrap();
    let req = env.write(
        "b",
        &f.request(vec![Operation::FirstTimeRootRotation], Some(sealed)),
    );
    let (r, _) = env.rotate(
        f.now,
        (OfflineRole::Root, true),
        Some(&keys),
        None,
        (&req, &out),
    );
    assert!(matches!(r, Err(SignerError::Identity(_))), "{r:?}");
    assert!(!keys.exists());

    // A secret that is not the current root key.
    let sealed = crate::identity::encrypt_to(&env.recipient, &key(99).to_json()).unwrap();
    let req = env.write(
        "c",
        &f.request(vec![Operation::FirstTimeRootRotation], Some(sealed)),
    );
    let (r, _) = env.rotate(
        f.now,
        (OfflineRole::Root, true),
        Some(&keys),
        None,
        (&req, &out),
    );
    assert!(
        matches!(&r, Err(SignerError::Refused(m)) if m.contains("not the root key")),
        "{r:?}"
    );

    // Not requested: a bundle for a targets rotation.
    let req = env.write("d", &f.request(vec![Operation::TargetsRotation], None));
    let (r, _) = env.rotate(
        f.now,
        (OfflineRole::Root, true),
        Some(&keys),
        None,
        (&req, &out),
    );
    assert!(
        matches!(&r, Err(SignerError::Refused(m)) if m.contains("does not request")),
        "{r:?}"
    );
    assert!(!keys.exists() && !out.exists());
}

#[test]
fn tampered_bundle_is_refused() {
    let f = Factory::new();
    let env = Env::new(&f);
    let b = f.request(vec![Operation::SignRoot], None);
    let mut bytes = b.to_bytes(Compression::None).unwrap();
    let pos = bytes.windows(7).position(|w| w == b"STARTED").unwrap();
    bytes[pos] = b'X';
    let p = env.path("tampered.tufbundle");
    std::fs::write(&p, &bytes).unwrap();
    let keys = env.path("k.tgz");
    let (r, _) = env.run(true, f.now, |ctx| {
        sign(ctx, &sign_args(&[&keys], io(&p, &env.path("o"))))
    });
    assert!(
        matches!(&r, Err(SignerError::Bundle(m)) if m.contains("transaction.json")),
        "{r:?}"
    );
}

#[test]
fn chain_not_from_pin_is_refused() {
    let mut f = Factory::new();
    let env = Env::new(&f);
    env.pin(&Factory::with_seed(77).chain[0]);
    f.apply_first_time_rotation();
    let req = env.write("r", &f.request(vec![Operation::SignRoot], None));
    let mut tb = KeysTarball::new();
    tb.add_private_key(Role::Root, &f.root_keys[0]).unwrap();
    let keys = env.path("k.tgz");
    tb.write_new(&keys).unwrap();
    let (r, _) = env.run(true, f.now, |ctx| {
        sign(ctx, &sign_args(&[&keys], io(&req, &env.path("o"))))
    });
    assert!(matches!(r, Err(SignerError::Chain { .. })), "{r:?}");
    assert!(!env.path("o").exists());
}

#[test]
fn expired_roots_are_refused_unless_allowed() {
    let mut f = Factory::new();
    let env = Env::new(&f);
    f.apply_first_time_rotation();
    let req = env.write("r", &f.request(vec![Operation::SignRoot], None));
    let mut tb = KeysTarball::new();
    tb.add_private_key(Role::Root, &f.root_keys[0]).unwrap();
    let keys = env.path("k.tgz");
    tb.write_new(&keys).unwrap();
    let later = f.current().signed.expires.plus_days(1);
    let (r, _) = env.run(true, later, |ctx| {
        sign(ctx, &sign_args(&[&keys], io(&req, &env.path("o"))))
    });
    assert!(matches!(r, Err(SignerError::Expired { .. })), "{r:?}");
    let mut args = sign_args(&[&keys], io(&req, &env.path("o")));
    args.check.allow_expired = true;
    let (r, text) = env.run(true, later, |ctx| sign(ctx, &args));
    r.unwrap_or_else(|e| panic!("{e}\n{text}"));

    // An expired pin that is also the current root.
    let g = Factory::new();
    let env = Env::new(&g);
    let req = env.write("r", &g.request(vec![Operation::SignRoot], None));
    let later = g.current().signed.expires.plus_days(1);
    let (r, _) = env.run(true, later, |ctx| {
        sign(ctx, &sign_args(&[&keys], io(&req, &env.path("o"))))
    });
    assert!(
        matches!(&r, Err(SignerError::Expired { what, .. }) if what.contains("pinned")),
        "{r:?}"
    );
}

/// A request whose server draft was altered by `edit`.
fn altered_request(f: &Factory, edit: impl FnOnce(&mut SignedRoot)) -> TransferBundle {
    let mut ci = f.server_draft();
    edit(&mut ci);
    let prod = f.server_prod_draft().map(|mut p| {
        let t = p.signed.threshold(Role::Targets);
        p.signed = ci.signed.clone();
        p.signed.roles.get_mut("targets").unwrap().threshold = t;
        p
    });
    f.request_with(
        vec![Operation::SignRoot],
        None,
        &f.transaction(false, &ci, prod.as_ref()),
    )
}

#[test]
fn unauthorized_draft_changes_need_a_typed_confirmation() {
    let mut f = Factory::new();
    let env = Env::new(&f);
    f.apply_first_time_rotation();
    let mut tb = KeysTarball::new();
    tb.add_private_key(Role::Root, &f.root_keys[0]).unwrap();
    let keys = env.path("k.tgz");
    tb.write_new(&keys).unwrap();
    let extra = key(42);
    let expires = f.server_draft().signed.expires.plus_days(-100);
    let cases: Vec<(&str, TransferBundle, shared::authority::Change)> = vec![
        (
            "extra root key",
            altered_request(&f, |r| {
                r.signed =
                    transform::add_offline_key(&r.signed, Role::Root, extra.public_key(), None)
                        .unwrap();
            }),
            shared::authority::Change::KeyAdded {
                role: Role::Root,
                keyid: extra.keyid().clone(),
            },
        ),
        (
            "changed threshold",
            altered_request(&f, |r| {
                r.signed.roles.get_mut("snapshot").unwrap().threshold = 2;
            }),
            shared::authority::Change::Threshold {
                role: Role::Snapshot,
                threshold: 2,
            },
        ),
        (
            "shortened expiry",
            altered_request(&f, |r| {
                r.signed.expires = expires;
            }),
            shared::authority::Change::Expires { expires },
        ),
    ];
    let cases: Vec<Case<_>> = cases
        .into_iter()
        .map(|(what, b, change)| Case::new(what, (b, change)))
        .collect();
    run_cases("unauthorized draft changes", &cases, |what, (b, change)| {
        let req = env.write("r", b);
        let out = env.path("o");
        // Each case starts without the response of the case before it.
        let _ = std::fs::remove_file(&out);
        // --yes: refused, naming the change.
        let (r, _) = env.run(true, f.now, |ctx| {
            sign(ctx, &sign_args(&[&keys], io(&req, &out)))
        });
        assert!(
            matches!(r, Err(SignerError::NeedsAuthority(ref v)) if v[0].contains(&change.to_string())),
            "{what}: {r:?}"
        );
        assert!(!out.exists(), "{what}");
        // A terminal: "yes" is not the code; refused.
        let (r, _) = env.run_on_terminal(Some("yes\nyes\n"), f.now, |ctx| {
            sign(ctx, &sign_args(&[&keys], io(&req, &out)))
        });
        assert!(
            matches!(r, Err(SignerError::CodeMismatch { .. })),
            "{what}: {r:?}"
        );
        assert!(!out.exists(), "{what}");
        // The code typed, then "yes": signed, and recorded as confirmed.
        let answers = format!("{}\nyes\n", change.confirmation_code());
        let (r, text) = env.run_on_terminal(Some(&answers), f.now, |ctx| {
            sign(ctx, &sign_args(&[&keys], io(&req, &out)))
        });
        r.unwrap_or_else(|e| panic!("{what}: {e}\n{text}"));
        assert!(text.contains("NOT AUTHORIZED"), "{what}: {text}");
        let resp = response(&out);
        let step = &resp.record().unwrap().steps[0];
        assert!(step.authorized.as_ref().unwrap().contains(change), "{what}");
        std::fs::remove_file(&out).unwrap();
    });
}

#[test]
fn a_staged_production_root_of_its_own_is_refused_not_replaced() {
    let mut f = Factory::new();
    let (env, keys) = first_time(&mut f);
    let ci = f.server_draft();
    let mut prod = f.server_prod_draft().unwrap();
    prod.signed.consistent_snapshot = !prod.signed.consistent_snapshot;
    let req = env.write(
        "r",
        &f.request_with(
            vec![Operation::RootRotation],
            None,
            &f.transaction(false, &ci, Some(&prod)),
        ),
    );
    let out = env.path("o");
    let before = std::fs::read(&keys).unwrap();
    let (r, _) = env.rotate(
        f.now,
        (OfflineRole::Root, false),
        Some(&keys),
        None,
        (&req, &out),
    );
    let err = r.unwrap_err();
    assert!(matches!(err, SignerError::MustNotSign(_)), "{err}");
    assert!(err.to_string().contains("fioctl's finalize"), "{err}");
    assert!(!out.exists());
    assert_eq!(std::fs::read(&keys).unwrap(), before);
}

#[test]
fn wrong_tarball_and_two_active_keys() {
    let mut f = Factory::new();
    let (env, keys) = first_time(&mut f);
    // A keys file without any key of this factory.
    let mut tb = KeysTarball::new();
    tb.add_private_key(Role::Root, &key(66)).unwrap();
    let wrong = env.path("wrong.tgz");
    tb.write_new(&wrong).unwrap();
    let req = env.write("r", &f.request(vec![Operation::SignRoot], None));
    let (r, _) = env.run(true, f.now, |ctx| {
        sign(ctx, &sign_args(&[&wrong], io(&req, &env.path("o"))))
    });
    assert!(matches!(r, Err(SignerError::NoKey { .. })), "{r:?}");
    let (r, _) = env.run(true, f.now, |ctx| {
        rotate_offline_key(
            ctx,
            &rotate_args(
                OfflineRole::Root,
                false,
                Some(&wrong),
                None,
                io(&req, &env.path("o")),
            ),
        )
    });
    assert!(
        matches!(
            r,
            Err(SignerError::NoKey { .. }) | Err(SignerError::Refused(_))
        ),
        "{r:?}"
    );

    // Two active root keys in one file: add a second root key to the factory, and put both
    // private keys into one tarball.
    let second = key(67);
    let mut tb = KeysTarball::read(&keys).unwrap();
    tb.add_private_key(Role::Root, &second).unwrap();
    let both = env.path("both.tgz");
    tb.write_new(&both).unwrap();
    let draft = f.server_draft();
    let added =
        transform::add_offline_key(&draft.signed, Role::Root, second.public_key(), None).unwrap();
    let (ci, prod) = transform::finalize(&added, f.prod.as_ref().map(|p| &p.signed));
    let signer = tb
        .find_signers(
            &f.current().signed,
            f.current().signed.role_keyids(Role::Root),
        )
        .unwrap();
    let ci = transform::sign_root(&ci, &[&signer[0].key]).unwrap();
    let prod = transform::sign_root(&prod, &[&signer[0].key]).unwrap();
    f.apply(ci, prod);
    env.pin(f.current());
    let req = env.write("r2", &f.request(vec![Operation::SignRoot], None));
    let (r, _) = env.run(true, f.now, |ctx| {
        sign(ctx, &sign_args(&[&both], io(&req, &env.path("o"))))
    });
    assert!(matches!(r, Err(SignerError::TwoActiveKeys { .. })), "{r:?}");
}

#[test]
fn leftover_temp_file_is_explained() {
    let mut f = Factory::new();
    let (env, keys) = first_time(&mut f);
    let leftover = env.path(".root.keys.tgz.0123456789abcdef.tmp");
    std::fs::write(&leftover, b"partial").unwrap();
    let req = env.write("r", &f.request(vec![Operation::RootRotation], None));
    let out = env.path("o");
    let (r, _) = env.rotate(
        f.now,
        (OfflineRole::Root, false),
        Some(&keys),
        None,
        (&req, &out),
    );
    match r {
        Err(e @ SignerError::LeftoverTemp { .. }) => {
            assert!(e.to_string().contains("NEW PRIVATE KEY"))
        }
        other => panic!("{other:?}"),
    }
    assert!(!out.exists());
}

#[test]
fn later_root_rotation_signs_with_old_and_new() {
    let mut f = Factory::new();
    let (env, keys) = first_time(&mut f);
    let old_root = f.current().signed.role_keyids(Role::Root)[0].clone();
    let req = env.write("r", &f.request(vec![Operation::RootRotation], None));
    let out = env.path("o");
    let (r, text) = env.rotate(
        f.now,
        (OfflineRole::Root, false),
        Some(&keys),
        None,
        (&req, &out),
    );
    let o = r.unwrap_or_else(|e| panic!("{e}\n{text}"));
    let up = response(&out).upload().unwrap().clone();
    let new_id = &o.created[0].0;
    let ids: Vec<&KeyId> = up.ci_root.signatures.iter().map(|s| &s.keyid).collect();
    assert_eq!(ids, vec![new_id, &old_root]);
    verify::verify_root_step(f.current(), &up.ci_root).unwrap();
    verify::verify_root_step(f.prod.as_ref().unwrap(), &up.prod_root).unwrap();
    // Keys are never removed from the file.
    let tb = KeysTarball::read(&keys).unwrap();
    assert!(tb.private_key(&old_root).unwrap().is_some());
    assert!(tb.private_key(new_id).unwrap().is_some());
}

#[test]
fn targets_rotations_resign_what_the_old_key_signed() {
    let mut f = Factory::new();
    let (env, keys) = first_time(&mut f);
    f.add_prod_targets("main", 3);
    let tk = env.path("targets.keys.tgz");

    // First targets rotation: no production targets carry an offline signature yet, so the
    // rotation signs none of them (fioctl's rule); they are listed for an explicit,
    // reviewed sign-prod-targets.
    let req = env.write("r1", &f.request(vec![Operation::TargetsRotation], None));
    let out0 = env.path("o0");
    let out = env.path("o1");
    let (r, text) = env.rotate(
        f.now,
        (OfflineRole::Targets, false),
        Some(&keys),
        Some(&tk),
        (&req, &out0),
    );
    let o = r.unwrap_or_else(|e| panic!("{e}\n{text}"));
    let t1 = o.created[0].0.clone();
    assert_eq!(o.created[0].2, tk);
    assert!(
        response(&out0)
            .upload()
            .unwrap()
            .targets_signatures
            .is_empty(),
        "nothing endorsed without review"
    );
    assert!(
        text.contains("leave prod-targets/main (version 3")
            && text.contains("sign-prod-targets --tags main"),
        "{text}"
    );
    // The explicit endorsement shows what it endorses.
    let spt = SignTargetsArgs {
        tags: vec![],
        io: io(&out0, &out),
        check: CheckArgs::default(),
        src: ka(None, Some(tk.clone())),
    };
    let (r, text) = env.run(true, f.now, |ctx| sign_prod_targets(ctx, &spt));
    r.unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(
        text.contains("sign prod-targets/main with targets key")
            && text.contains("version 3, 2 targets")
            && text.contains("has not endorsed this document before"),
        "{text}"
    );
    let up = response(&out).upload().unwrap().clone();
    assert_eq!(up.ci_root.signed.role_keyids(Role::Targets).len(), 2);
    assert_eq!(up.ci_root.signed.threshold(Role::Targets), 1);
    assert_eq!(up.prod_root.signed.threshold(Role::Targets), 2);
    assert_eq!(up.targets_signatures["main"][0].keyid, t1);
    verify::verify_root_step(f.current(), &up.ci_root).unwrap();
    let mut doc = f.prod_targets["main"].clone();
    doc.add_signature(up.targets_signatures["main"][0].clone());
    assert_eq!(
        verify::verify_targets(&up.prod_root.signed, &doc, "main").unwrap(),
        2
    );
    // The root keys file did not get the targets key.
    assert!(KeysTarball::read(&keys)
        .unwrap()
        .private_key(&t1)
        .unwrap()
        .is_none());
    apply(&mut f, &out);

    // Second rotation: only documents the old key signed are re-signed.
    f.add_prod_targets("beta", 4); // online signature only
    f.prod_targets
        .get_mut("beta")
        .unwrap()
        .signatures
        .truncate(1);
    f.add_wave("wave-5", "main", 5);
    let wave_sig = {
        let tb = KeysTarball::read(&tk).unwrap();
        let k = tb.private_key(&t1).unwrap().unwrap().key;
        transform::sign_targets(&f.waves["wave-5"], &k).unwrap()
    };
    f.waves.get_mut("wave-5").unwrap().add_signature(wave_sig);
    let req = env.write("r2", &f.request(vec![Operation::TargetsRotation], None));
    let out = env.path("o2");
    let (r, text) = env.rotate(
        f.now,
        (OfflineRole::Targets, false),
        Some(&keys),
        Some(&tk),
        (&req, &out),
    );
    let o = r.unwrap_or_else(|e| panic!("{e}\n{text}"));
    let t2 = o.created[0].0.clone();
    let up = response(&out).upload().unwrap().clone();
    assert!(up.targets_signatures.contains_key("main"));
    assert!(!up.targets_signatures.contains_key("beta"));
    assert!(text.contains("leave prod-targets/beta"), "{text}");
    assert_eq!(up.waves_signatures["wave-5"][0].keyid, t2);
    assert!(!up.ci_root.signed.role_keyids(Role::Targets).contains(&t1));
    assert!(text.contains("wave is active"), "{text}");
}

#[test]
fn targets_holder_then_root_holder() {
    let mut f = Factory::new();
    let (env, keys) = first_time(&mut f);
    f.add_prod_targets("main", 3);
    let tk = env.path("targets.keys.tgz");
    let req = env.write(
        "r",
        &f.request(
            vec![Operation::AddOfflineKey {
                role: Role::Targets,
                keyid: None,
            }],
            None,
        ),
    );
    // The targets holder: only --targets-keys.
    let step1 = env.path("step1");
    let args = AddKeyArgs {
        role: OfflineRole::Targets,
        key_type: KeyTypeArg::Ed25519,
        io: io(&req, &step1),
        check: CheckArgs::default(),
        src: ka(None, Some(tk.clone())),
    };
    let (r, text) = env.run(true, f.now, |ctx| add_offline_key(ctx, &args));
    let o = r.unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(text.contains("roots are not signed"), "{text}");
    let b = response(&step1);
    assert!(b.upload().unwrap().ci_root.signatures.is_empty());
    // The online-signed production targets are not endorsed by adding a key.
    assert!(b.upload().unwrap().targets_signatures.is_empty());
    assert!(text.contains("leave prod-targets/main"), "{text}");
    let _ = &o.created[0].0;
    // Adding a second targets key to the same file is refused.
    let (r, _) = env.run(true, f.now, |ctx| {
        add_offline_key(
            ctx,
            &AddKeyArgs {
                io: io(&step1, &env.path("x")),
                ..args.clone()
            },
        )
    });
    assert!(
        matches!(r, Err(SignerError::ActiveKeyPresent { .. })),
        "{r:?}"
    );

    // The root holder signs the response; the recorded step explains the new key.
    let step2 = env.path("step2");
    let (r, text) = env.run(true, f.now, |ctx| {
        sign(ctx, &sign_args(&[&keys], io(&step1, &step2)))
    });
    r.unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(
        text.contains("this laptop's own step 1 (authenticated)"),
        "{text}"
    );
    let b = response(&step2);
    assert_eq!(b.record().unwrap().steps.len(), 2);
    let up = b.upload().unwrap();
    verify::verify_root_step(f.current(), &up.ci_root).unwrap();
    verify::verify_root_step(f.prod.as_ref().unwrap(), &up.prod_root).unwrap();
    assert!(up.targets_signatures.is_empty());

    // A forged step: a response whose draft has an extra root key, made by an identity
    // nobody pinned (its claims are unauthenticated) or unsigned.
    let mut forged = up.clone();
    forged.ci_root.signed = transform::add_offline_key(
        &forged.ci_root.signed,
        Role::Root,
        key(43).public_key(),
        None,
    )
    .unwrap();
    forged.prod_root.signed = transform::derive_prod_root(&forged.ci_root, 2).signed;
    let fb = response(&step1)
        .respond(
            shared::bundle::StepInput {
                signer: writer(),
                time: f.now,
                operations: vec![Operation::SignRoot],
                authorized: vec![shared::authority::Change::KeyAdded {
                    role: Role::Root,
                    keyid: key(43).keyid().clone(),
                }],
                upload: forged,
            },
            &shared::attestation::SigningIdentity::from_seed(&[99; 32]),
        )
        .unwrap();
    let fp = env.write("forged", &fb);
    let (r, _) = env.run(true, f.now, |ctx| {
        sign(ctx, &sign_args(&[&keys], io(&fp, &env.path("o"))))
    });
    assert!(
        matches!(r, Err(SignerError::NeedsAuthority(ref v)) if v.iter().any(|c| c.contains(key(43).keyid().as_str()))),
        "{r:?}"
    );
}

#[test]
fn expert_operations() {
    let mut f = Factory::new();
    let (env, keys) = first_time(&mut f);
    f.root_keys.push(current_root_key(&keys, &f));
    f.apply_first_targets_rotation();
    env.pin(f.current());
    f.add_prod_targets("main", 3);
    f.add_wave("w1", "main", 4);
    let t_old = f.targets_key.as_ref().unwrap().keyid().clone();
    // A targets file with the current offline targets key.
    let tk = env.path("t.tgz");
    let mut tb = KeysTarball::new();
    tb.add_private_key(Role::Targets, f.targets_key.as_ref().unwrap())
        .unwrap();
    tb.write_new(&tk).unwrap();

    // set-threshold: not requested → refused; requested → done and signed.
    let req = env.write("r0", &f.request(vec![Operation::SignRoot], None));
    let th = |io| ThresholdArgs {
        role: OfflineRole::Root,
        threshold: 1,
        io,
        check: CheckArgs::default(),
        src: ka(Some(keys.clone()), None),
    };
    let (r, _) = env.run(true, f.now, |ctx| {
        set_threshold(ctx, &th(io(&req, &env.path("o"))))
    });
    assert!(
        matches!(&r, Err(SignerError::Refused(m)) if m.contains("does not request")),
        "{r:?}"
    );

    // Add a second targets key (new file), raise the production threshold to 3, in one
    // transaction, then delete the old key... step by step on the same bundle.
    let ops = vec![
        Operation::AddOfflineKey {
            role: Role::Targets,
            keyid: None,
        },
        Operation::SetThreshold {
            role: Role::Targets,
            threshold: 3,
        },
        Operation::DeleteOfflineKey {
            role: Role::Targets,
            keyid: t_old.clone(),
        },
    ];
    let req = env.write("r1", &f.request(ops, None));
    let tk2 = env.path("t2.tgz");
    let s1 = env.path("s1");
    let add = AddKeyArgs {
        role: OfflineRole::Targets,
        key_type: KeyTypeArg::Ed25519,
        io: io(&req, &s1),
        check: CheckArgs::default(),
        src: ka(Some(keys.clone()), Some(tk2.clone())),
    };
    let (r, text) = env.run(true, f.now, |ctx| add_offline_key(ctx, &add));
    let o = r.unwrap_or_else(|e| panic!("{e}\n{text}"));
    let t_new = o.created[0].0.clone();
    let s2 = env.path("s2");
    let thr = ThresholdArgs {
        role: OfflineRole::Targets,
        threshold: 3,
        io: io(&s1, &s2),
        check: CheckArgs::default(),
        src: ka(None, None),
    };
    let (r, text) = env.run(true, f.now, |ctx| set_threshold(ctx, &thr));
    r.unwrap_or_else(|e| panic!("{e}\n{text}"));
    let up = response(&s2).upload().unwrap().clone();
    assert_eq!(up.prod_root.signed.threshold(Role::Targets), 3);
    assert_eq!(up.ci_root.signed.threshold(Role::Targets), 1);
    assert!(
        up.ci_root.signatures.is_empty(),
        "changed roots need signing again"
    );

    // Threshold 3 with 3 keys; deleting one now would leave 2 < 3: refused by the transform.
    let s3 = env.path("s3");
    let del = DeleteKeyArgs {
        role: OfflineRole::Targets,
        keyid: t_old.clone(),
        io: io(&s2, &s3),
        check: CheckArgs::default(),
        src: ka(Some(keys.clone()), None),
    };
    let (r, _) = env.run(true, f.now, |ctx| delete_offline_key(ctx, &del));
    assert!(
        matches!(&r, Err(SignerError::Refused(m)) if m.contains("threshold")),
        "{r:?}"
    );
    // The online targets key can never be deleted.
    let del_online = DeleteKeyArgs {
        keyid: f.online_targets.keyid().clone(),
        ..del.clone()
    };
    let (r, _) = env.run(true, f.now, |ctx| delete_offline_key(ctx, &del_online));
    assert!(r.is_err());

    // sign: the root holder signs everything staged so far.
    let s4 = env.path("s4");
    let (r, text) = env.run(true, f.now, |ctx| {
        sign(ctx, &sign_args(&[&keys], io(&s2, &s4)))
    });
    r.unwrap_or_else(|e| panic!("{e}\n{text}"));
    let up = response(&s4).upload().unwrap().clone();
    verify::verify_root_step(f.current(), &up.ci_root).unwrap();

    // sign-prod-targets with the old targets key (still in the staged root), then sign-wave.
    let s5 = env.path("s5");
    let spt = SignTargetsArgs {
        tags: vec![],
        io: io(&s4, &s5),
        check: CheckArgs::default(),
        src: ka(None, Some(tk.clone())),
    };
    let (r, text) = env.run(true, f.now, |ctx| sign_prod_targets(ctx, &spt));
    r.unwrap_or_else(|e| panic!("{e}\n{text}"));
    let s6 = env.path("s6");
    let sw = SignWaveArgs {
        name: "w1".into(),
        io: io(&s5, &s6),
        check: CheckArgs::default(),
        src: ka(None, Some(tk.clone())),
    };
    let (r, text) = env.run(true, f.now, |ctx| sign_wave(ctx, &sw));
    r.unwrap_or_else(|e| panic!("{e}\n{text}"));
    let b = response(&s6);
    let up = b.upload().unwrap();
    let main: Vec<&KeyId> = up.targets_signatures["main"]
        .iter()
        .map(|s| &s.keyid)
        .collect();
    assert!(main.contains(&&t_new) && main.contains(&&t_old), "{main:?}");
    assert!(up.waves_signatures["w1"].iter().any(|s| s.keyid == t_old));
    // Unknown wave.
    let (r, _) = env.run(true, f.now, |ctx| {
        sign_wave(
            ctx,
            &SignWaveArgs {
                name: "nope".into(),
                io: io(&s5, &env.path("x")),
                ..sw.clone()
            },
        )
    });
    assert!(matches!(r, Err(SignerError::Usage(_))), "{r:?}");
    assert_eq!(b.record().unwrap().steps.len(), 5);
}

#[test]
fn combine_two_root_holders() {
    let mut f = Factory::new();
    let (env, keys) = first_time(&mut f);
    // A second root key held by another admin, threshold 2.
    let b_key = key(80);
    let draft = f.server_draft();
    let added =
        transform::add_offline_key(&draft.signed, Role::Root, b_key.public_key(), None).unwrap();
    let (ci, prod) = transform::finalize(&added, f.prod.as_ref().map(|p| &p.signed));
    let (mut ci, mut prod) = (ci, prod);
    ci.signed.roles.get_mut("root").unwrap().threshold = 2;
    prod.signed.roles.get_mut("root").unwrap().threshold = 2;
    let a_key = KeysTarball::read(&keys)
        .unwrap()
        .find_signers(
            &f.current().signed,
            f.current().signed.role_keyids(Role::Root),
        )
        .unwrap()
        .remove(0)
        .key;
    let ci = transform::sign_root(&ci, &[&a_key, &b_key]).unwrap();
    let prod = transform::sign_root(&prod, &[&a_key, &b_key]).unwrap();
    f.apply(ci, prod);
    let b_file = env.path("b.tgz");
    let mut tb = KeysTarball::new();
    tb.add_private_key(Role::Root, &b_key).unwrap();
    tb.write_new(&b_file).unwrap();

    let req = env.write("r", &f.request(vec![Operation::SignRoot], None));
    let (oa, ob) = (env.path("a.resp"), env.path("b.resp"));
    let (r, text) = env.run(true, f.now, |ctx| {
        sign(ctx, &sign_args(&[&keys], io(&req, &oa)))
    });
    r.unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(text.contains("still need root signatures"), "{text}");
    let (r, _) = env.run(true, f.now, |ctx| {
        sign(ctx, &sign_args(&[&b_file], io(&req, &ob)))
    });
    r.unwrap();
    let out = env.path("c.resp");
    let (r, text) = env.run(true, f.now, |ctx| {
        combine(
            ctx,
            &CombineArgs {
                a: oa.clone(),
                b: ob.clone(),
                out: out.clone(),
                allow_expired: false,
            },
        )
    });
    r.unwrap_or_else(|e| panic!("{e}\n{text}"));
    let up = response(&out).upload().unwrap().clone();
    verify::verify_root_step(f.current(), &up.ci_root).unwrap();
    assert!(text.contains("signed by enough root keys"), "{text}");
}

#[test]
fn inspect_reports_and_exit_status() {
    let mut f = Factory::new();
    let env = Env::new(&f);
    let req = env.write(
        "r",
        &f.request(
            vec![Operation::FirstTimeRootRotation],
            Some(env.sealed_first_root(&f)),
        ),
    );
    let args = |b: &Path, json: bool| crate::cli::InspectArgs {
        bundle: b.to_path_buf(),
        json,
        keys: None,
        targets_keys: None,
        passphrase: PassphraseArgs::default(),
        allow_expired: false,
        pin: Default::default(),
    };
    let (mut ui, out) = Ui::scripted("", false, false);
    let code = env
        .with_ctx(&mut ui, f.now, |ctx| {
            crate::inspect::run(ctx, &args(&req, false))
        })
        .unwrap();
    let text = out.text();
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("Fingerprint") && text.contains("first-time-root-rotation"),
        "{text}"
    );
    assert!(text.contains("--- ci-root v1 (current)"), "{text}");
    assert!(text.contains("single offline key"), "{text}");
    assert!(
        text.contains("still the initial online key") || text.contains("no offline targets key"),
        "{text}"
    );

    // A change nothing authorized → signing needs a typed confirmation, JSON output.
    f.apply_first_time_rotation();
    env.pin(f.current());
    let bad = env.write(
        "bad",
        &altered_request(&f, |r| r.signed.expires = r.signed.expires.plus_days(-10)),
    );
    let (mut ui, out) = Ui::scripted("", false, false);
    let code = env
        .with_ctx(&mut ui, f.now, |ctx| {
            crate::inspect::run(ctx, &args(&bad, true))
        })
        .unwrap();
    assert_eq!(code, crate::error::EXIT_NEEDS_CONFIRMATION);
    let v: serde_json::Value = serde_json::from_str(&out.text()).unwrap();
    assert_eq!(v["must-not-sign"], false);
    assert_eq!(v["needs-confirmation"], true);
    assert_eq!(v["changes"][0]["change"]["change"], "expires");
    assert!(v["changes"][0]["authority"].is_null());
    // After the first-time rotation: production threshold 2 with one targets key is expected.
    assert!(v["warnings"]
        .to_string()
        .contains("cannot be signed until an offline targets key"));

    // A version that skips ahead cannot be authorized by anyone: must not sign.
    let bad = env.write("bad2", &altered_request(&f, |r| r.signed.version += 1));
    let (mut ui, out) = Ui::scripted("", false, false);
    let code = env
        .with_ctx(&mut ui, f.now, |ctx| {
            crate::inspect::run(ctx, &args(&bad, false))
        })
        .unwrap();
    assert_eq!(code, crate::error::EXIT_MUST_NOT_SIGN, "{}", out.text());
    assert!(out.text().contains("Verdict: do NOT sign"));
}

#[test]
fn wave_signing_without_a_transaction() {
    let mut f = Factory::new();
    let (env, keys) = first_time(&mut f);
    f.root_keys.push(current_root_key(&keys, &f));
    f.apply_first_targets_rotation();
    env.pin(f.current());
    // `courier waves init`: an unsigned draft, no open transaction.
    f.add_wave("wave-9", "main", 9);
    f.waves.get_mut("wave-9").unwrap().signatures.clear();
    let mut tx: serde_json::Value =
        serde_json::from_slice(&f.transaction(false, &f.server_draft(), None)).unwrap();
    tx["status"] = "NONE".into();
    tx.as_object_mut().unwrap().remove("updated");
    let req = env.write(
        "w",
        &f.request_with(
            vec![Operation::SignWave {
                name: "wave-9".into(),
            }],
            None,
            &serde_json::to_vec(&tx).unwrap(),
        ),
    );
    let tk = env.path("t.tgz");
    let mut tb = KeysTarball::new();
    tb.add_private_key(Role::Targets, f.targets_key.as_ref().unwrap())
        .unwrap();
    tb.write_new(&tk).unwrap();
    // Root operations need a transaction.
    let (r, _) = env.run(true, f.now, |ctx| {
        sign(ctx, &sign_args(&[&keys], io(&req, &env.path("x"))))
    });
    assert!(
        matches!(&r, Err(SignerError::Refused(m)) if m.contains("NONE")),
        "{r:?}"
    );
    let out = env.path("o");
    let args = SignWaveArgs {
        name: "wave-9".into(),
        io: io(&req, &out),
        check: CheckArgs::default(),
        src: ka(None, Some(tk)),
    };
    let (r, text) = env.run(true, f.now, |ctx| sign_wave(ctx, &args));
    r.unwrap_or_else(|e| panic!("{e}\n{text}"));
    let up = response(&out).upload().unwrap().clone();
    let sig = &up.waves_signatures["wave-9"][0];
    assert_eq!(&sig.keyid, f.targets_key.as_ref().unwrap().keyid());
    let mut doc = f.waves["wave-9"].clone();
    doc.add_signature(sig.clone());
    let mut online = transform::sign_targets(&doc, &f.online_targets).unwrap();
    online.keyid = f.online_targets.keyid().clone();
    doc.add_signature(online);
    assert_eq!(
        verify::verify_targets(&f.prod.as_ref().unwrap().signed, &doc, "wave").unwrap(),
        2
    );
}

#[test]
fn add_root_key_for_a_second_admin() {
    let mut f = Factory::new();
    let (env, keys) = first_time(&mut f);
    let req = env.write(
        "r",
        &f.request(
            vec![Operation::AddOfflineKey {
                role: Role::Root,
                keyid: None,
            }],
            None,
        ),
    );
    let args = AddKeyArgs {
        role: OfflineRole::Root,
        key_type: KeyTypeArg::Ed25519,
        io: io(&req, &env.path("x")),
        check: CheckArgs::default(),
        src: ka(Some(keys.clone()), None),
    };
    // The file already holds an active root key.
    let (r, _) = env.run(true, f.now, |ctx| add_offline_key(ctx, &args));
    assert!(
        matches!(r, Err(SignerError::ActiveKeyPresent { .. })),
        "{r:?}"
    );
    // The second admin's own file.
    let other = env.path("admin2.keys.tgz");
    let s1 = env.path("s1");
    let args = AddKeyArgs {
        src: ka(Some(other.clone()), None),
        io: io(&req, &s1),
        ..args
    };
    let (r, text) = env.run(true, f.now, |ctx| add_offline_key(ctx, &args));
    let o = r.unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(o.created[0].2, other);
    // The first admin signs.
    let s2 = env.path("s2");
    let (r, text) = env.run(true, f.now, |ctx| {
        sign(ctx, &sign_args(&[&keys], io(&s1, &s2)))
    });
    r.unwrap_or_else(|e| panic!("{e}\n{text}"));
    let up = response(&s2).upload().unwrap().clone();
    assert_eq!(up.ci_root.signed.role_keyids(Role::Root).len(), 2);
    verify::verify_root_step(f.current(), &up.ci_root).unwrap();
}

#[test]
fn altered_carried_targets_are_never_endorsed() {
    let mut f = Factory::new();
    let (env, keys) = first_time(&mut f);
    f.add_prod_targets("main", 3);
    let genuine = f.prod_targets["main"].clone();
    // Content changed under the online key's signature (e.g. on the USB stick).
    f.prod_targets.get_mut("main").unwrap().signed.version += 1;
    let tk = env.path("targets.keys.tgz");
    let req = env.write("r1", &f.request(vec![Operation::TargetsRotation], None));
    let out = env.path("o1");
    // The rotation refuses the bundle: a document's signature does not verify.
    let (r, text) = env.rotate(
        f.now,
        (OfflineRole::Targets, false),
        Some(&keys),
        Some(&tk),
        (&req, &out),
    );
    let err = r.expect_err(&text).to_string();
    assert!(
        err.contains("prod-targets/main.json: its signature by targets key")
            && err.contains("does not verify"),
        "{err}"
    );
    assert!(!out.exists() && !tk.exists());

    // With the genuine document the rotation goes through; later, an explicit
    // endorsement of an altered document is refused the same way.
    f.prod_targets.insert("main".into(), genuine);
    let req = env.write("r2", &f.request(vec![Operation::TargetsRotation], None));
    let (r, text) = env.rotate(
        f.now,
        (OfflineRole::Targets, false),
        Some(&keys),
        Some(&tk),
        (&req, &out),
    );
    r.unwrap_or_else(|e| panic!("{e}\n{text}"));
    apply(&mut f, &out);
    f.prod_targets.get_mut("main").unwrap().signed.version += 1;
    let req = env.write(
        "r3",
        &f.request(
            vec![Operation::SignProdTargets {
                tags: vec!["main".into()],
            }],
            None,
        ),
    );
    let spt = SignTargetsArgs {
        tags: vec![],
        io: io(&req, &env.path("o2")),
        check: CheckArgs::default(),
        src: ka(None, Some(tk.clone())),
    };
    let (r, text) = env.run(true, f.now, |ctx| sign_prod_targets(ctx, &spt));
    let err = r.expect_err(&text).to_string();
    assert!(
        err.contains("prod-targets/main.json: its signature by targets key")
            && err.contains("does not verify"),
        "{err}"
    );
    assert!(!env.path("o2").exists());
}

#[test]
fn a_rotation_does_not_launder_content_re_signed_by_the_online_key() {
    let mut f = Factory::new();
    let (env, keys) = first_time(&mut f);
    f.root_keys.push(current_root_key(&keys, &f));
    f.apply_first_targets_rotation();
    env.pin(f.current());
    // Production targets signed by the online and the offline key, then changed and
    // re-signed by the online key alone: the offline signature entry stays, invalid.
    f.add_prod_targets("main", 7);
    let doc = f.prod_targets.get_mut("main").unwrap();
    doc.signed.version += 1;
    let online_sig = transform::sign_targets(doc, &f.online_targets).unwrap();
    doc.signatures
        .retain(|s| &s.keyid != f.online_targets.keyid());
    doc.add_signature(online_sig);
    let tk = env.path("tk.tgz");
    let mut tb = KeysTarball::new();
    tb.add_private_key(Role::Targets, f.targets_key.as_ref().unwrap())
        .unwrap();
    tb.write_new(&tk).unwrap();
    let req = env.write("r", &f.request(vec![Operation::TargetsRotation], None));
    let out = env.path("o");
    let before = std::fs::read(&tk).unwrap();
    let (r, text) = env.rotate(
        f.now,
        (OfflineRole::Targets, false),
        Some(&keys),
        Some(&tk),
        (&req, &out),
    );
    let err = r.expect_err(&text).to_string();
    assert!(
        err.contains("prod-targets/main.json: its signature by the offline targets key"),
        "{err}"
    );
    assert!(!out.exists());
    assert_eq!(
        std::fs::read(&tk).unwrap(),
        before,
        "the keys file is unchanged"
    );
}

#[test]
fn root_signature_confirmed_by_typing_the_draft_digest() {
    let mut f = Factory::new();
    let (env, keys) = first_time(&mut f);
    let req = env.write("r", &f.request(vec![Operation::SignRoot], None));
    let out = env.path("o");
    let args = sign_args(&[&keys], io(&req, &out));
    let typed = |answer: &str| {
        let (mut ui, shown) = Ui::scripted(answer, true, false);
        ui.set_digest_confirmation(true);
        let r = env.with_ctx(&mut ui, f.now, |ctx| sign(ctx, &args));
        (r, shown.text())
    };
    // `yes` is not enough; the digest shown is the draft's.
    let (r, text) = typed("yes\n");
    assert!(
        matches!(r, Err(SignerError::DigestMismatch { .. })),
        "{r:?}"
    );
    assert!(!out.exists());
    let digest = text
        .lines()
        .find_map(|l| l.split_once("digest (SHA-256 of its signed part): "))
        .map(|(_, d)| d.trim().to_string())
        .unwrap_or_else(|| panic!("no digest shown: {text}"));
    let draft = f.server_draft();
    assert_eq!(
        digest,
        sha256_hex(&draft.canonical_signed().unwrap()),
        "{text}"
    );
    // Its first 8 characters confirm.
    let (r, text) = typed(&format!("{}\n", &digest[..8]));
    r.unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(out.exists());
}
