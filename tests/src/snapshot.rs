//! Snapshots of what the programs say to a person: the exact text of a message or a listing,
//! with what changes from run to run replaced by placeholders, compared with a file under
//! `tests/tests/snapshots/`.
//!
//! A message that changes makes its test fail, showing the stored text and the new one; a
//! snapshot that does not exist fails as well. After a deliberate change, run the test with
//! `SNAPSHOTS=overwrite` to write the new text, and review it in the diff like code.
//!
//! [`normalize`] replaces, in this order: the test's temporary directory (`[ROOT]`), root
//! fingerprints (16 groups of 4 hex digits: `[FINGERPRINT]`), 64-hex-digit key ids and
//! digests (`[HEX64]`), short key ids (`3f2a9c01…a9c1`: `[KEYID]`) and UTC time stamps
//! (`2026-03-01T10:20:30Z`: `[TIME]`).

use std::path::{Path, PathBuf};

/// The environment variable that makes [`assert_snapshot`] write snapshots instead of
/// comparing (`SNAPSHOTS=overwrite`).
pub const OVERWRITE_ENV: &str = "SNAPSHOTS";

/// The directory of the snapshot files.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots")
}

/// Compares `text` with the snapshot `name` (`tests/tests/snapshots/<name>.txt`), or writes
/// it with `SNAPSHOTS=overwrite`. Panics with both texts when they differ.
#[track_caller]
pub fn assert_snapshot(name: &str, text: &str) {
    let path = dir().join(format!("{name}.txt"));
    if std::env::var(OVERWRITE_ENV).is_ok_and(|v| v == "overwrite") {
        std::fs::create_dir_all(dir()).expect("create the snapshot directory");
        std::fs::write(&path, text).expect("write the snapshot");
        return;
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}; run the test with {OVERWRITE_ENV}=overwrite to write it, then review it.\n--- new text\n{text}",
            path.display()
        )
    });
    if stored != text {
        panic!(
            "snapshot {} differs at {} (after a deliberate change: {OVERWRITE_ENV}=overwrite, then review the diff)\n--- stored\n{stored}\n--- new\n{text}",
            path.display(),
            first_difference(&stored, text)
        );
    }
}

/// Where two texts first differ: the line, with both versions quoted (so that a difference in
/// white space or a missing final newline shows).
fn first_difference(stored: &str, new: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (
        stored.split_inclusive('\n').collect(),
        new.split_inclusive('\n').collect(),
    );
    let n = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    format!(
        "line {}: stored {:?}, new {:?}",
        n + 1,
        a.get(n).copied().unwrap_or("(end)"),
        b.get(n).copied().unwrap_or("(end)")
    )
}

/// `text` with what changes from run to run replaced by placeholders (see the module
/// documentation); `root` is the test's temporary directory.
pub fn normalize(text: &str, root: &Path) -> String {
    let mut s = text.replace(&root.display().to_string(), "[ROOT]");
    if let Ok(real) = root.canonicalize() {
        s = s.replace(&real.display().to_string(), "[ROOT]");
    }
    let s = fingerprints(&s);
    let s = hex_runs(&s);
    times(&s)
}

fn is_hex(c: char) -> bool {
    c.is_ascii_digit() || ('a'..='f').contains(&c)
}

/// Root fingerprints: 16 space-separated groups of 4 lowercase hex digits.
fn fingerprints(s: &str) -> String {
    const GROUPS: usize = 16;
    let chars: Vec<char> = s.chars().collect();
    let group_at = |i: usize| -> bool {
        i + 4 <= chars.len()
            && chars[i..i + 4].iter().all(|c| is_hex(*c))
            && (i == 0 || !chars[i - 1].is_ascii_alphanumeric())
            && chars.get(i + 4).is_none_or(|c| !c.is_ascii_alphanumeric())
    };
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        let whole = (0..GROUPS).all(|g| {
            let at = i + g * 5;
            group_at(at) && (g == GROUPS - 1 || chars.get(at + 4) == Some(&' '))
        });
        if whole {
            out.push_str("[FINGERPRINT]");
            i += GROUPS * 5 - 1;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// 64-hex-digit runs (`[HEX64]`) and short key ids `xxxxxxxx…xxxx` (`[KEYID]`).
fn hex_runs(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let run_len = |from: usize| chars[from..].iter().take_while(|c| is_hex(**c)).count();
    let boundary = |i: usize| i == 0 || !chars[i - 1].is_ascii_alphanumeric();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        if is_hex(chars[i]) && boundary(i) {
            let n = run_len(i);
            let end_ok = chars.get(i + n).is_none_or(|c| !c.is_ascii_alphanumeric());
            if n == 64 && end_ok {
                out.push_str("[HEX64]");
                i += n;
                continue;
            }
            if n == 8 && chars.get(i + 8) == Some(&'…') && run_len(i + 9) == 4 {
                out.push_str("[KEYID]");
                i += 13;
                continue;
            }
            out.extend(&chars[i..i + n]);
            i += n;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// UTC time stamps `YYYY-MM-DDTHH:MM:SSZ`.
fn times(s: &str) -> String {
    const PATTERN: &[u8] = b"dddd-dd-ddTdd:dd:ddZ";
    let bytes = s.as_bytes();
    let matches_at = |i: usize| {
        bytes.len() >= i + PATTERN.len()
            && PATTERN.iter().zip(&bytes[i..]).all(|(p, b)| match p {
                b'd' => b.is_ascii_digit(),
                other => other == b,
            })
    };
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        if matches_at(i) {
            out.push_str("[TIME]");
            i += PATTERN.len();
        } else {
            // Copy one whole UTF-8 character.
            let len = s[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&s[i..i + len]);
            i += len;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders() {
        let id = "ab".repeat(32);
        let fp = ["1a2b"; 16].join(" ");
        let text = format!(
            "/tmp/x/offline/root.keys.tgz holds {id} ({}…{}) since 2026-03-01T10:20:30Z; fingerprint {fp}.\n",
            &id[..8],
            &id[60..]
        );
        assert_eq!(
            normalize(&text, Path::new("/tmp/x")),
            "[ROOT]/offline/root.keys.tgz holds [HEX64] ([KEYID]) since [TIME]; fingerprint [FINGERPRINT].\n"
        );
        assert_eq!(
            first_difference("a\nb\n", "a\nb"),
            "line 2: stored \"b\\n\", new \"b\""
        );
        // Shorter or longer hex runs and words stay.
        assert_eq!(
            normalize("v12 deadbeef cafe", Path::new("/r")),
            "v12 deadbeef cafe"
        );
    }
}
