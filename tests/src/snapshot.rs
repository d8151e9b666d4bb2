//! Snapshot tests of what the programs print: a message is compared, after the parts that
//! change from run to run are replaced by placeholders, with the file
//! `tests/snapshots/<name>.txt`, so that a changed wording shows up as a failing test with a
//! diff, and the reviewed text of every user-facing message lives in the repository.
//!
//! Placeholders ([`redact`]): the run's temporary directory → `[TMP]`; 64-hex key ids and
//! digests → `[KEYID]`; short key ids (`1ecb67d5…dff3`) → `[KEY]`; digests in groups of four
//! hex digits → `[DIGEST]`; 40-hex transaction ids → `[TXID]`; 8-hex prefixes → `[SHORT]`;
//! RFC 3339 times → `[TIME]`; dates → `[DATE]`; bundle fingerprints → `[FP]`; the simulator's
//! address → `[SERVER]`.
//!
//! `SNAPSHOTS=update cargo test …` writes the files instead of comparing (review the diff in
//! git before committing). A missing file is written on a developer's machine and fails the
//! run with `CI=true`, so CI never passes on a snapshot nobody reviewed.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use regex::Regex;

/// Where the snapshot files live.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots")
}

/// `text` with the run-dependent parts replaced by placeholders; `tmp` is the run's
/// temporary directory (replaced first, so that no path depends on it).
pub fn redact(text: &str, tmp: &Path) -> String {
    static RULES: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        [
            (r"https?://127\.0\.0\.1:[0-9]+", "[SERVER]"),
            (
                r"\b[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z",
                "[TIME]",
            ),
            (r"\b[0-9]{4}-[0-9]{2}-[0-9]{2}\b", "[DATE]"),
            (r"\b[0-9a-f]{64}\b", "[KEYID]"),
            (r"\b[0-9a-f]{8}…[0-9a-f]{4}\b", "[KEY]"),
            (r"\b(?:[0-9a-f]{4} ){15}[0-9a-f]{4}\b", "[DIGEST]"),
            (r"\b[0-9a-f]{40}\b", "[TXID]"),
            (
                r"\b[0-9a-f]{5}-[0-9a-f]{5}-[0-9a-f]{5}-[0-9a-f]{5}\b",
                "[FP]",
            ),
            (r"\b[0-9a-f]{8}\b", "[SHORT]"),
        ]
        .into_iter()
        .map(|(re, to)| (Regex::new(re).expect("snapshot rule"), to))
        .collect()
    });
    let mut out = text.replace(&tmp.display().to_string(), "[TMP]");
    for (re, to) in rules {
        out = re.replace_all(&out, *to).into_owned();
    }
    out
}

/// Compares `text` (redacted with [`redact`]) with the snapshot `name`; panics with a line
/// diff when they differ. See the module docs for updating and for missing files.
#[track_caller]
pub fn assert_snapshot(name: &str, text: &str, tmp: &Path) {
    let actual = redact(text, tmp);
    let path = dir().join(format!("{name}.txt"));
    let update = std::env::var("SNAPSHOTS").is_ok_and(|v| v == "update");
    let expected = std::fs::read_to_string(&path).ok();
    if update || expected.is_none() {
        assert!(
            update || !crate::tools::is_ci(),
            "snapshot {} is missing: run the test with SNAPSHOTS=update on a developer machine, review it, commit it",
            path.display()
        );
        std::fs::create_dir_all(dir()).expect("snapshots dir");
        std::fs::write(&path, &actual).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        crate::report!("snapshot {name} written to {}", path.display());
        return;
    }
    let expected = expected.unwrap_or_default();
    if expected != actual {
        let diff = similar::TextDiff::from_lines(&expected, &actual)
            .unified_diff()
            .header("snapshot", "this run")
            .to_string();
        panic!(
            "snapshot {name} differs ({}); if the new text is right, rerun with SNAPSHOTS=update:\n{diff}",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_replaces_what_changes_between_runs() {
        let tmp = Path::new("/tmp/offline-tuf-e2e-Ab12");
        let text = format!(
            "{}/offline/new.tgz holds no key 1ecb67d5 ({}) at 2026-12-02T01:49:15Z on 2026-12-02, \
             txid {} fingerprint a0894-4fcc9-0fd16-814cb via http://127.0.0.1:4321/x, key \
             1ecb67d5…dff3, root {}",
            tmp.display(),
            "ab".repeat(32),
            "cd".repeat(20),
            ["a572"; 16].join(" ")
        );
        assert_eq!(
            redact(&text, tmp),
            "[TMP]/offline/new.tgz holds no key [SHORT] ([KEYID]) at [TIME] on [DATE], txid \
             [TXID] fingerprint [FP] via [SERVER]/x, key [KEY], root [DIGEST]"
        );
    }
}
