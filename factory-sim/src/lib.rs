//! # factory-sim — a Foundries-API-compatible factory server
//!
//! Serves the endpoints fioctl's `keys tuf` and `waves` flows use (`foundries-api.md` §4, plus
//! wave list/rollout/complete/cancel of §9 and `users/self/`) with the same paths (trailing
//! slashes included), methods, JSON field names and status codes, and validates uploads the way the
//! real server would, so the courier and the signer cannot cheat.
//!
//! It is a product of its own: users run the `factory-sim` binary (`cargo run -p factory-sim --
//! init|add-user|serve ...`, `src/main.rs`) for dry runs of a ceremony with the real fioctl,
//! courier and signer before touching their factory; the workspace's tests, the demo and the
//! benchmarks use this library in-process or the binary.
//!
//! In-process use (the server runs on its own thread and runtime; plain `#[test]`s work):
//!
//! ```no_run
//! use factory_sim::{init_factory, InitOptions, SimServer};
//! let dir = tempfile::tempdir().unwrap();
//! let report = init_factory(&InitOptions::new(dir.path(), "acme", "secret-token")).unwrap();
//! let server = SimServer::start(dir.path()).unwrap();
//! let url = server.url(); // http://127.0.0.1:PORT, send OSF-TOKEN: secret-token
//! # let _ = (url, report);
//! let view = server.factory("acme").unwrap(); // committed state, for assertions
//! assert_eq!(view.version(), 1);
//! server.stop();
//! ```
//!
//! ## Behaviour and documented choices
//!
//! * **State** — `DIR/factories/<name>/factory.json` is replaced atomically (temp file, fsync,
//!   rename, fsync of the directory: `shared::fsutil`, the code the courier and the signer
//!   write their files with) and is the single commit point of every change; targets
//!   documents live in a content-addressed blob store written before the commit; CI targets are
//!   one file streamed by `init` (one line per build) with an offset index, so a build is read
//!   alone and production/wave targets are streamed from their files. A restart keeps
//!   everything. Run one server per state directory; factories and users added while a server
//!   runs are seen after a restart.
//! * **Auth** — `OSF-TOKEN` (or `Authorization: Bearer base64(token)`); missing or unknown token
//!   401; a token of another factory (or of no factory in the path) 403. Tokens are stored
//!   hashed.
//! * **Status codes** — errors carry `{"message": "...", "errors": [...]}`. Validation refusals
//!   422; malformed bodies and txid mismatches 400 (the initiator may send an empty txid);
//!   "no transaction in progress", unknown wave or root version 404; a second transaction,
//!   changes while `APPLYING`, duplicate names, a second active wave per tag, new waves while
//!   online keys are being rotated, online-key rotation while a wave is active 409. `init` and
//!   wave creation answer 201, everything else 200.
//! * **Transactions** — `init` stages the current CI (and production, once it exists) root with
//!   version + 1, `x-changelog` `{polis-id, message, timestamp}` and no signatures; first-time
//!   returns the initial root key pair as `first_root.sec`/`first_root.pub`. A `PUT` is refused
//!   (422) for structural problems: wrong version, CI and production roots differing other
//!   than in the targets threshold, production targets threshold below 2, CI targets threshold
//!   changed, online keys changed without `gen-online-keys`, role key ids missing from `keys` or
//!   not the SHA-256 of their SPKI, `x-changelog` changed, unknown `signed` members, signatures
//!   that do not verify or are not by a current/new root key, bad target signatures.
//!   Missing signatures are accepted and reported in `issues.errors`. `apply` additionally
//!   requires a threshold of the current root's and of the new root's root keys on both roots,
//!   an expiry in the future (more than [`MAX_EXPIRY_DAYS`] ahead is a warning), a first-time
//!   rotation to take the root key offline, no change of the offline targets keys while a wave
//!   is active, and every production tag and active wave to meet
//!   the new production targets threshold after merging the staged signatures, dropping
//!   signatures of removed keys and re-signing with a rotated online key. That last check
//!   applies once the factory has (or is getting) an offline targets key; before, it is a
//!   warning (targets created at factory creation carry only the online signature).
//! * **After apply** — the roots are appended to the chain (`N.root.json` serves every version;
//!   `?production=1` serves the CI root for versions before the first offline rotation);
//!   production/wave targets carry the merged signatures; a rotated online targets key
//!   re-signs them and the CI targets manifest; the server forgets the initial root key once
//!   the root is offline, and retired online keys.
//! * **History** — `init` creates production tags and waves only the way a real factory gets
//!   them: with `--offline-keys DIR` it first takes the factory offline with fioctl's
//!   algorithms (first-time root rotation, then the first targets key rotation, the admin's
//!   tarballs written to `DIR` in fioctl's layout), then signs tags and waves with the online
//!   and the offline targets key. `--legacy-online-only-tags` (tags signed by the online key
//!   alone on a factory that never went offline, a state the real Factory does not produce)
//!   exists only for the tests that prove the toolkit does not endorse such content by itself.
//! * **Waves and devices** — `init --device-tags` registers production devices (four per tag,
//!   device groups `east` and `west`). `waves/{wave}/rollout/` reaches a subset of the
//!   wave's tag's devices (by group, limit, percentage or UUIDs; validated: an active wave,
//!   a selector, bounds, known devices of the tag and group, none reached twice), and both
//!   rollout and `complete/` refuse (422) a wave whose targets do not meet the production
//!   targets threshold yet — fioctl's `waves sign` help: "you cannot roll out or complete a
//!   wave before it has enough signatures". Details in `waves.rs`.
//! * **Faults** — [`FaultConfig`]: `500` and `reset` act before handling (nothing changes),
//!   `delay` sleeps then handles, `truncate` and `reset-after` act after the change is
//!   committed (a lost response), `apply-interrupt` leaves a validated transaction in
//!   `APPLYING` without publishing (re-run apply). Queue one-shot faults with
//!   [`SimServer::inject_fault`].
//!
//! ## Checked against the real fioctl
//!
//! `tests/tests/interop/fioctl_conformance.rs` and `fioctl_tarballs.rs` run the unmodified
//! upstream fioctl (commit 9b0a6e7e431a, the one in `../shared/tools/fioctl/`) against this
//! server for every workflow of the offline-keys documentation and of fioctl's expert mode;
//! whatever fioctl sends the real server accepts, so this server accepts it too. What they
//! found, and the choices where fioctl's behaviour is the only evidence of the real server's:
//!
//! * **Tags before an offline targets key.** On a factory created with tags signed by the
//!   online key alone, fioctl's first targets rotation was refused at apply: fioctl re-signs
//!   only production targets that carry a signature by the previous offline targets key, so
//!   it re-signs none. Production targets come from waves, which need the offline targets
//!   key, so the real Factory has no such tags: `init` no longer makes them (see History).
//! * **"All" of nothing is `{}`.** `prod-targets/?tag=` and `wave-targets/?name=` with an
//!   empty list answer 200 `{}` when there is nothing, and 404 only when named tags or waves
//!   do not exist. Evidence: `fioctl keys tuf updates sign-prod-targets` without
//!   `--tags`/`--waves` (its documented default, "all tags" and "all active Waves") fetches both
//!   lists and treats a 404 as fatal, so with a 404 its default would fail on every factory
//!   without an active wave. A single named missing tag must stay 404: `fioctl waves init`
//!   relies on it.
//! * **Active waves.** fioctl's help says a targets rotation is not allowed while a wave is
//!   active, and fioctl does not check it itself: the server refuses at apply ("not allowed
//!   while a wave is active"), after which fioctl prints its failure path and `updates
//!   cancel` restores the factory byte for byte.
//! * **Expiry.** fioctl always sets one year and never shows a refusal of a longer one: over
//!   three years is a warning, not a refusal.
//! * **The staged production root.** `init` stages a production root only once the factory has
//!   one (the first-time transaction stages none). fioctl's `review`, `sign` and
//!   `set-threshold` then derive it from the staged CI root (`genProdTufRoot`: a copy with
//!   targets threshold 2); its finalize step keeps the staged production threshold, so a
//!   threshold of 3 survives any fioctl change only when the server stages the production
//!   root at `init` — which is what this server does. The courier and the signer derive the
//!   same document (`shared::transaction::derive_missing_prod_root`, the one rule), checked
//!   against fioctl's `review --raw --prod`.
//! * **fioctl quirks users see**, not simulator differences: `delete-offline-key --keys`
//!   prints an empty `= Delete keyid:` line (it prints the `--key-id` flag) and then the
//!   removed key as `= Removing unused key`; fioctl 9b0a6e7 has no `updates status` command
//!   (`updates review` is its status; the courier has both).

mod ci;
mod docs;
mod error;
mod faults;
mod init;
mod inspect;
mod reply;
mod repo;
mod routes;
mod server;
mod state;
mod store;
mod updates;
mod validate;
mod waves;

pub use error::SimError;
pub use faults::{FaultConfig, FaultKind, RequestRecord};
pub use init::{add_user, init_factory, InitOptions, InitReport, OfflineHistory};
pub use inspect::{FactoryView, SignedBytes, TxInfo, WaveInfo};
pub use server::{SimConfig, SimServer};
pub use shared::transaction::TxStatus;
pub use state::{OnlineKeyIds, WaveStatus};
pub use validate::{EXPIRY_WARNING_DAYS, MAX_EXPIRY_DAYS, MIN_PROD_TARGETS_THRESHOLD};

/// Loads the factories of `cfg.state_dir` and returns the server future, which serves
/// `listener` until `shutdown` resolves (for the `factory-sim` binary and async callers that
/// own a runtime). Loading happens before this returns, so a bad state directory fails early.
pub fn serve(
    cfg: &SimConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<impl std::future::Future<Output = ()>, SimError> {
    let sim = std::sync::Arc::new(routes::Sim::load(
        cfg.state_dir.clone(),
        cfg.faults.clone(),
        cfg.log,
    )?);
    Ok(server::serve(sim, listener, shutdown))
}
