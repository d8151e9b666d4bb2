//! Transfer bundles: the only thing that crosses the air gap.
//!
//! A bundle (`*.tufbundle`) is a deterministic tar archive, optionally gzip-compressed,
//! whose first member is `manifest.json`. The normative description is
//! `bundles-spec/SPEC.md` in the repository; in short:
//!
//! ```text
//! manifest.json                   format, version, kind, factory, txid, writer, time,
//!                                 operations, sha256+size of every other member,
//!                                 (response) request-sha256 and the signer steps,
//!                                 manifest-checksum
//! transaction.json                the server's GET root/updates answer, as received
//! chain/1.root.json … N.root.json the root chain as served
//! prod-targets/<tag>.json         production targets (to re-sign)
//! waves/<name>.json               wave targets (to re-sign)
//! secrets/first-root.sec.age      first-time rotation only: the initial root key, age-encrypted
//! --- response adds ---
//! upload.json                     the PUT root/updates body
//! record.json                     what each signer step signed, the drafts it produced, the
//!                                 changes it authorized, and (format 2) its signer's
//!                                 attestation over all of it
//! ```
//!
//! # Identity
//!
//! A bundle's identity is the SHA-256 of its **uncompressed** tar stream
//! ([`TransferBundle::digest`]); the gzip layer is only transport. Its short human form,
//! [`TransferBundle::fingerprint`], is the first 80 bits of that digest as four groups of
//! five lowercase hex digits (`3f9a1-0c2d4-77be0-19f3a`). A response names the digest of
//! the request it answers, and each signer step the digest of the bundle it consumed.
//!
//! # Reading is strict
//!
//! [`TransferBundle::from_bytes`] refuses, with an error naming the member: archive tricks
//! (see [`crate::archive`]), a first member other than `manifest.json`, an unknown format
//! name, version or kind, a manifest that is not canonical JSON or whose checksum is wrong,
//! a member not listed in the manifest, a listed member that is missing, any size or
//! digest mismatch, member names outside the layout, members out of the canonical order,
//! JSON members that do not parse, and any difference between the archive and its
//! canonical re-encoding (so every header byte, padding byte and the end marker are fixed).
//! Nothing partial is ever returned.
//!
//! # Signer steps and combining
//!
//! [`TransferBundle::respond`] turns a request (or a response) into a response with one
//! more step: the caller gives the new `upload.json` content and the changes its signer
//! authorized; the record of what this step signed (which key ids signed which digests) is
//! derived by comparing it with the previous upload, and the step is signed with the
//! signer's identity ([`crate::attestation`]; [`TransferBundle::step_auth`] checks it).
//! [`combine`] merges two responses to the same request, like partially signed
//! transactions: signatures are merged per document by key id, and different signed content
//! is refused.
//!
//! # Where things are
//!
//! This module is the public face; every item named here is re-exported, so
//! `shared::bundle::X` is the path to use. Behind it:
//!
//! * `schema` — format names and versions, member names, and the types of the manifest,
//!   upload and record with their serde (the transaction's are [`crate::transaction`]'s);
//! * `codec` — [`TransferBundle`]: the canonical tar stream, reading and the canonical
//!   re-encoding check, digests and fingerprint, accessors, file I/O;
//! * `stream` — where members live (memory, or the file they came from), reading a
//!   plain-tar file in one pass, the [`Spool`] requests are assembled from, the streamed
//!   encoding;
//! * `validate` — structural validation of content, layout, operations and steps;
//! * `respond` — responses: [`TransferBundle::respond`], step attestations, [`combine`];
//! * `error` — [`BundleError`].

mod codec;
mod error;
#[cfg(test)]
mod fixtures;
mod respond;
mod schema;
mod stream;
mod validate;

/// `transaction.json` is the Factory API's `GET root/updates` answer: its types are
/// [`crate::transaction`]'s, named here too.
pub use crate::transaction::{ParsedTransaction, RootPair, Transaction};
pub use codec::{
    Doc, TransferBundle, FILE_MODE, LIMITS, MAX_FILE_SIZE, MEMBER_MODE, WRITE_COMPRESSION,
};
pub use error::BundleError;
pub use respond::combine;
pub use schema::{
    BundleKind, Manifest, MemberDigest, Operation, Record, RequestInput, Sha256Digest,
    SignedDocument, Step, StepAuth, StepInput, StepOutput, StepSummary, Upload, Writer, CHAIN_DIR,
    FIRST_ROOT_SECRET, FORMAT_NAME, FORMAT_VERSION, MANIFEST, PROD_TARGETS_DIR, READABLE_VERSIONS,
    RECORD, REQUEST_FORMAT_VERSION, TRANSACTION, UPLOAD, WAVES_DIR,
};
pub use stream::{MemberData, Spool, CHANGE_AFTER_READ_ENV};
pub use validate::{validate_doc_name, MAX_DOC_NAME};
