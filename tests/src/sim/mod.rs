//! # factory-sim — a Foundries-API-compatible factory server for tests, the demo and benchmarks
//!
//! Serves the endpoints fioctl's `keys tuf` and `waves` flows use (`foundries-api.md` §4, plus
//! wave list/complete/cancel of §9 and `users/self/`) with the same paths (trailing slashes
//! included), methods, JSON field names and status codes, and validates uploads the way the
//! real server would, so the courier and the signer cannot cheat.
//!
//! In-process use (the server runs on its own thread and runtime; plain `#[test]`s work):
//!
//! ```no_run
//! use tests::sim::{init_factory, InitOptions, SimServer};
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
//!   rename, fsync of the directory) and is the single commit point of every change; targets
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
//!   an expiry in the future and at most [`MAX_EXPIRY_DAYS`] (3 years) ahead, a first-time
//!   rotation to take the root key offline, and every production tag and active wave to meet
//!   the new production targets threshold after merging the staged signatures, dropping
//!   signatures of removed keys and re-signing with a rotated online key. That last check
//!   applies once the factory has (or is getting) an offline targets key; before, it is a
//!   warning (targets created at factory creation carry only the online signature).
//! * **After apply** — the roots are appended to the chain (`N.root.json` serves every version;
//!   `?production=1` serves the CI root for versions before the first offline rotation);
//!   production/wave targets carry the merged signatures; a rotated online targets key
//!   re-signs them and the CI targets manifest; the server forgets the initial root key once
//!   the root is offline, and retired online keys.
//! * **Faults** — [`FaultConfig`]: `500` and `reset` act before handling (nothing changes),
//!   `delay` sleeps then handles, `truncate` and `reset-after` act after the change is
//!   committed (a lost response), `apply-interrupt` leaves a validated transaction in
//!   `APPLYING` without publishing (re-run apply). Queue one-shot faults with
//!   [`SimServer::inject_fault`].

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
pub use state::{OnlineKeyIds, TxStatus, WaveStatus};
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
