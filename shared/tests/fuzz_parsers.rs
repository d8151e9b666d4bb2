//! Parser fuzzing (issue 10, part 1), on the stable toolchain with `proptest`.
//!
//! Inputs are arbitrary bytes and mutations of the seed corpus in `tests/corpus/` (real
//! bundles from `bundles-spec/examples`, a keys tarball of the ota-tuf ED25519 test key from
//! `tests/vectors`, and ota-tuf root and targets documents). Properties:
//!
//! * the bundle reader, the keys-tarball reader, metadata parsing and canonical JSON never
//!   panic, and never hold more than a bounded amount of memory at once (measured with a
//!   counting allocator);
//! * every mutation of a golden bundle (bit flip, truncation, appended data, reordered or
//!   duplicated members) is refused with an error;
//! * a keys tarball carries no checksum of its own (gzip's CRC covers only the compressed
//!   form, and a plain tar has none), so a flip in tar header fields that carry no meaning
//!   (mtime, uid, padding) or appended zero blocks can leave the same keys. The property is
//!   therefore: **the tarball is refused, or it yields exactly the original keys** (key ids,
//!   file names, public and private halves) — a different key is never accepted. Reordered
//!   members mean the same tarball and must give the same keys; duplicated members are
//!   always refused.
//!
//! The CI run does [`ci_cases`] cases per property (deterministic RNG); the `#[ignore]`d
//! `long_run` does `FUZZ_CASES` cases (default 1,000,000) per property with a random seed:
//! `cargo test -p shared --release --test fuzz_parsers -- --ignored --nocapture`.

#[macro_use]
mod common;

use std::cell::Cell;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRng, TestRunner};
use shared::archive::{self, Compression, MemberRef};
use shared::bundle::TransferBundle;
use shared::keys::PrivateKey;
use shared::metadata::{Role, SignedRoot, SignedTargets};
use shared::tarball::KeysTarball;
use shared::{canonical, tarball};

#[global_allocator]
static METER: common::Meter = common::Meter;

/// Most memory any parse may hold at once: a fixed allowance plus 64 bytes per input byte.
/// (The limits of the formats are far larger, but a mutated input cannot claim them
/// without supplying the bytes, except through gzip, which the readers bound.)
fn memory_bound(input_len: usize) -> usize {
    16 * 1024 * 1024 + 64 * input_len
}

/// Cases per property in the default (CI) run.
fn ci_cases() -> u32 {
    1024
}

/// Runs `check` on `cases` values of `strategy`; returns the number of cases tried.
fn run<S: Strategy>(
    name: &str,
    cases: u32,
    deterministic: bool,
    strategy: S,
    check: impl Fn(S::Value),
) -> usize {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = if deterministic {
        TestRunner::new_with_rng(
            config.clone(),
            TestRng::deterministic_rng(config.rng_algorithm),
        )
    } else {
        TestRunner::new(config)
    };
    let tried = Cell::new(0usize);
    let result = runner.run(&strategy, |value| {
        tried.set(tried.get() + 1);
        check(value);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    report!("fuzz_parsers: {name}: {} cases", tried.get());
    tried.get()
}

/// Parses `bytes` as a bundle, checking the memory bound; `Ok` means accepted.
fn parse_bundle(bytes: &[u8]) -> Result<TransferBundle, String> {
    let (res, peak) = common::peak_during(|| TransferBundle::from_bytes(bytes));
    assert!(
        peak <= memory_bound(bytes.len()),
        "bundle reader held {peak} bytes for a {}-byte input",
        bytes.len()
    );
    res.map_err(|e| e.to_string())
}

/// What a keys tarball holds, everything compared: (key id, .pub name, .sec name, public
/// key as SPKI DER, key type and private key as re-encoded from the key). The key material is compared, not
/// the text it was read from: `"keytype": "eD25519"` reads as the same ED25519 key.
type KeySet = Vec<(String, String, Option<String>, Vec<u8>, Option<Vec<u8>>)>;

/// The key type and the private key itself (`keyval.private` as re-encoded from the key).
fn private_material(key: &PrivateKey) -> Vec<u8> {
    let json: serde_json::Value = serde_json::from_slice(&key.to_json()).expect("key JSON");
    let mut out = key.key_type().as_str().as_bytes().to_vec();
    out.push(b':');
    out.extend_from_slice(
        json["keyval"]["private"]
            .as_str()
            .expect("private")
            .as_bytes(),
    );
    out
}

/// Parses `bytes` as a keys tarball, checking the memory bound; `Ok` with its keys.
fn parse_keys(bytes: &[u8]) -> Result<KeySet, String> {
    let (res, peak) = common::peak_during(|| {
        let t = KeysTarball::from_bytes(bytes).map_err(|e| e.to_string())?;
        let mut out = KeySet::new();
        for k in t.keys().map_err(|e| e.to_string())? {
            let private = match &k.sec_file {
                Some(_) => Some(
                    t.private_key(&k.keyid)
                        .map_err(|e| e.to_string())?
                        .map(|f| private_material(&f.key))
                        .unwrap_or_default(),
                ),
                None => None,
            };
            out.push((
                k.keyid.as_str().to_string(),
                k.pub_file.clone(),
                k.sec_file.clone(),
                k.public.spki_der().map_err(|e| e.to_string())?,
                private,
            ));
        }
        Ok(out)
    });
    assert!(
        peak <= memory_bound(bytes.len()),
        "keys tarball reader held {peak} bytes for a {}-byte input",
        bytes.len()
    );
    res
}

/// The golden bundles of the corpus.
fn bundles() -> Vec<(String, Vec<u8>)> {
    let files = common::corpus_files("bundles");
    for (name, bytes) in &files {
        parse_bundle(bytes).unwrap_or_else(|e| panic!("corpus bundle {name}: {e}"));
    }
    assert!(files.len() >= 2);
    files
}

/// The keys tarballs of the corpus (gzip and plain tar), with their keys.
fn keys_tarballs() -> Vec<(String, Vec<u8>, KeySet)> {
    common::corpus_files("keys")
        .into_iter()
        .map(|(name, bytes)| {
            let keys = parse_keys(&bytes).unwrap_or_else(|e| panic!("corpus tarball {name}: {e}"));
            assert!(!keys.is_empty());
            (name, bytes, keys)
        })
        .collect()
}

/// A mutation of a byte string.
#[derive(Clone, Debug)]
enum Mutation {
    /// Flip bit `bit` of the byte at (`pos` modulo the length).
    Flip { pos: usize, bit: u8 },
    /// Keep only the first (`keep` modulo the length) bytes.
    Truncate { keep: usize },
    /// Append bytes.
    Append(Vec<u8>),
    /// Write the members back in another order (a rotation by `by`, plus a swap).
    Reorder { by: usize, swap: (usize, usize) },
    /// Write member (`which` modulo the count) twice.
    Duplicate { which: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 0u8..8).prop_map(|(pos, bit)| Mutation::Flip { pos, bit }),
        1 => any::<usize>().prop_map(|keep| Mutation::Truncate { keep }),
        1 => prop_oneof![
            proptest::collection::vec(any::<u8>(), 1..1100),
            (1usize..4).prop_map(|blocks| vec![0u8; 512 * blocks]),
        ]
        .prop_map(Mutation::Append),
        1 => (any::<usize>(), (any::<usize>(), any::<usize>()))
            .prop_map(|(by, swap)| Mutation::Reorder { by, swap }),
        1 => any::<usize>().prop_map(|which| Mutation::Duplicate { which }),
    ]
}

/// Applies `m` to an archive (member-level mutations keep the compression); `None` when
/// the mutation leaves the bytes as they were (a reorder that is the identity).
fn mutate(bytes: &[u8], limits: &archive::Limits, m: &Mutation) -> Option<Vec<u8>> {
    // Members are written one by one and their blocks concatenated, so that even a
    // duplicate (which the writer refuses) can be made.
    let rewrite = |order: Vec<usize>| {
        let members = archive::read(bytes, limits).expect("golden archive");
        let mut tar = Vec::new();
        for &i in &order {
            let one = archive::write_tar(&[MemberRef {
                name: &members[i].name,
                data: &members[i].data,
                mode: 0o644,
            }])
            .expect("write");
            tar.extend_from_slice(&one[..one.len() - 1024]);
        }
        tar.extend_from_slice(&[0u8; 1024]);
        match Compression::detect(bytes) {
            Compression::Gzip => archive::gzip(&tar).expect("gzip").to_vec(),
            Compression::None => tar,
        }
    };
    let count = || archive::read(bytes, limits).expect("golden archive").len();
    match m {
        Mutation::Flip { pos, bit } => {
            let mut out = bytes.to_vec();
            out[pos % bytes.len()] ^= 1 << bit;
            Some(out)
        }
        Mutation::Truncate { keep } => Some(bytes[..keep % bytes.len()].to_vec()),
        Mutation::Append(extra) => {
            let mut out = bytes.to_vec();
            out.extend_from_slice(extra);
            Some(out)
        }
        Mutation::Reorder { by, swap } => {
            let n = count();
            let mut order: Vec<usize> = (0..n).collect();
            order.rotate_left(by % n);
            order.swap(swap.0 % n, swap.1 % n);
            if order.iter().enumerate().all(|(i, &j)| i == j) {
                return None;
            }
            Some(rewrite(order))
        }
        Mutation::Duplicate { which } => {
            let n = count();
            let mut order: Vec<usize> = (0..n).collect();
            order.insert(which % n, which % n);
            Some(rewrite(order))
        }
    }
}

fn golden_bundle_mutations(cases: u32, deterministic: bool) -> usize {
    let golden: Vec<(String, Vec<u8>, TransferBundle)> = bundles()
        .into_iter()
        .map(|(name, bytes)| {
            let b = TransferBundle::from_bytes(&bytes).expect("golden bundle");
            (name, bytes, b)
        })
        .collect();
    let n = golden.len();
    let same = Cell::new(0usize);
    let tried = run(
        "every golden-bundle mutation is refused",
        cases,
        deterministic,
        (0..n, mutation()),
        |(i, m)| {
            let (name, bytes, original) = &golden[i];
            let Some(mutated) = mutate(bytes, &shared::bundle::LIMITS, &m) else {
                return;
            };
            if let Ok(b) = parse_bundle(&mutated) {
                // Deflate ignores some bits (unused code lengths, padding after the last
                // block), so a flip inside the compressed stream can decompress to the very
                // same tar: the same bundle, which is fine. Anything else is a finding.
                let compressed = Compression::detect(bytes) == Compression::Gzip;
                assert!(
                    matches!(m, Mutation::Flip { .. })
                        && compressed
                        && b.digest() == original.digest()
                        && b.to_bytes(Compression::None).ok()
                            == original.to_bytes(Compression::None).ok(),
                    "{name}: mutation {m:?} accepted (bundle {})",
                    b.fingerprint()
                );
                same.set(same.get() + 1);
            }
        },
    );
    report!(
        "fuzz_parsers: bundles: {} flips inside a gzip stream decompressed to the identical bundle and were accepted as it, the rest refused",
        same.get()
    );
    tried
}

fn keys_tarball_mutations(cases: u32, deterministic: bool) -> usize {
    let golden = keys_tarballs();
    let n = golden.len();
    let same = Cell::new(0usize);
    let tried = run(
        "a keys-tarball mutation is refused or gives the same keys",
        cases,
        deterministic,
        (0..n, mutation()),
        |(i, m)| {
            let (name, bytes, keys) = &golden[i];
            let Some(mutated) = mutate(bytes, &tarball::LIMITS, &m) else {
                return;
            };
            match (&m, parse_keys(&mutated)) {
                (Mutation::Duplicate { .. }, Ok(_)) => {
                    panic!("{name}: duplicated member accepted ({m:?})")
                }
                (Mutation::Reorder { .. }, Err(e)) => {
                    panic!("{name}: reordered members refused ({m:?}): {e}")
                }
                (_, Ok(got)) => {
                    assert!(
                        got == *keys,
                        "{name}: mutation {m:?} accepted with different keys"
                    );
                    same.set(same.get() + 1);
                }
                (_, Err(_)) => {}
            }
        },
    );
    report!(
        "fuzz_parsers: keys tarballs: {} mutations accepted with identical keys (reorders, meaningless header bits), the rest refused",
        same.get()
    );
    tried
}

fn arbitrary_bytes(cases: u32, deterministic: bool) -> usize {
    run(
        "arbitrary bytes never panic any parser",
        cases,
        deterministic,
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..4096),
            // Starts that get past the first checks: gzip magic, a tar header, JSON.
            proptest::collection::vec(any::<u8>(), 0..2048).prop_map(|mut v| {
                v.splice(0..0, archive::FIXED_GZIP_HEADER);
                v
            }),
            proptest::collection::vec(any::<u8>(), 0..2048).prop_map(|mut v| {
                v.splice(0..0, b"manifest.json".iter().copied());
                v.resize(v.len().max(1024), 0);
                v
            }),
            "\\PC{0,400}".prop_map(|s| format!("{{\"signed\":{s}").into_bytes()),
        ],
        |bytes| {
            let _ = parse_bundle(&bytes);
            let _ = parse_keys(&bytes);
            let (_, peak) = common::peak_during(|| {
                let _ = SignedRoot::from_json(&bytes);
                let _ = SignedTargets::from_json(&bytes);
                let _ = PrivateKey::from_json(&bytes);
                if let Ok(c) = canonical::canonicalize(&bytes) {
                    assert_fixed_point(&c);
                }
            });
            assert!(
                peak <= memory_bound(bytes.len()),
                "json parsers held {peak}"
            );
        },
    )
}

/// Canonical output is its own canonical form. Canonical JSON (like Go's encoder that
/// fioctl uses) writes control bytes other than `\n`, `\r`, `\t` raw, which is not JSON
/// text any more, so only output without them can be read back.
fn assert_fixed_point(c: &[u8]) {
    if c.iter().all(|&b| b >= 0x20) {
        assert_eq!(canonical::canonicalize(c).as_deref(), Ok(c));
    }
}

fn metadata_mutations(cases: u32, deterministic: bool) -> usize {
    let docs = common::corpus_files("metadata");
    let n = docs.len();
    run(
        "mutated metadata never panics; canonical JSON is a fixed point",
        cases,
        deterministic,
        (
            0..n,
            proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        ),
        |(i, edits)| {
            let mut bytes = docs[i].1.clone();
            for (pos, b) in edits {
                let len = bytes.len();
                bytes[pos % len] = b;
            }
            let root = SignedRoot::from_json(&bytes);
            let targets = SignedTargets::from_json(&bytes);
            if let Ok(c) = canonical::canonicalize(&bytes) {
                assert_fixed_point(&c);
            } else {
                assert!(root.is_err() && targets.is_err(), "invalid JSON parsed");
            }
        },
    )
}

#[test]
fn golden_bundles_reject_every_mutation() {
    golden_bundle_mutations(ci_cases() * 4, true);
}

#[test]
fn keys_tarballs_never_yield_a_different_key() {
    keys_tarball_mutations(ci_cases() * 4, true);
}

#[test]
fn parsers_never_panic_on_arbitrary_bytes() {
    arbitrary_bytes(ci_cases() * 4, true);
}

#[test]
fn metadata_and_canonical_json_survive_mutation() {
    metadata_mutations(ci_cases() * 4, true);
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for depth in [canonical::MAX_DEPTH + 1, 10_000, 200_000] {
        for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
            let doc = format!("{}1{}", open.repeat(depth), close.repeat(depth));
            assert!(canonical::canonicalize(doc.as_bytes()).is_err(), "{depth}");
            assert!(SignedRoot::from_json(doc.as_bytes()).is_err());
            assert!(SignedTargets::from_json(doc.as_bytes()).is_err());
        }
    }
}

/// The corpus keys tarballs are the ota-tuf ED25519 test key (`tests/vectors`) stored the
/// way this toolkit stores a targets key, gzip (`keys.tgz`) and plain tar (`keys.tar`).
/// `FUZZ_WRITE_CORPUS=1` rewrites them.
#[test]
fn corpus_keys_tarballs_hold_the_vector_key() {
    let vectors = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let sec = std::fs::read(vectors.join("ota-tuf-credentials_ed25519-targets.sec")).unwrap();
    let key = PrivateKey::from_json(&sec).unwrap();
    let mut t = KeysTarball::new();
    t.add_private_key(Role::Targets, &key).unwrap();
    let tgz = t.to_bytes().unwrap().to_vec();
    let members = archive::read(&tgz, &tarball::LIMITS).unwrap();
    let refs: Vec<MemberRef<'_>> = members
        .iter()
        .map(|m| MemberRef {
            name: &m.name,
            data: &m.data,
            mode: tarball::MODE,
        })
        .collect();
    let tar = archive::write(&refs, Compression::None).unwrap().to_vec();
    for (name, bytes) in [("keys.tgz", &tgz), ("keys.tar", &tar)] {
        let path = common::corpus(&format!("keys/{name}"));
        if std::env::var_os("FUZZ_WRITE_CORPUS").is_some() {
            std::fs::write(&path, bytes).unwrap();
        }
        assert!(
            std::fs::read(&path).unwrap() == *bytes,
            "{} is stale (FUZZ_WRITE_CORPUS=1 rewrites it)",
            path.display()
        );
        let keys = parse_keys(bytes).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(&keys[0].0, key.keyid().as_str());
    }
}

/// The long run: `FUZZ_CASES` (default 1,000,000) cases per property, random seed.
#[test]
#[ignore = "long run: cargo test -p shared --release --test fuzz_parsers -- --ignored"]
fn long_run() {
    let cases: u32 = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let total = golden_bundle_mutations(cases, false)
        + keys_tarball_mutations(cases, false)
        + arbitrary_bytes(cases, false)
        + metadata_mutations(cases, false);
    report!("fuzz_parsers: long run: {total} cases in all");
}
