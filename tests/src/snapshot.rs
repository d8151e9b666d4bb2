//! Snapshot tests of what people read, in the style of `trycmd`: a command's line, exit
//! status, stdout and stderr compared with a file `tests/snapshots/<name>.md`.
//!
//! ```text
//! $ courier updates push usb-stick/resp.tufbundle --apply
//! ? 0
//! --- stdout
//! Response bundle [ROOT]/usb-stick/resp.tufbundle (fingerprint [FP])
//! ...
//! --- stderr
//! ```
//!
//! What differs between runs is replaced before comparing ([`normalize`]): the world's
//! directory (`[ROOT]`), the simulator's URL (`[URL]`), key ids in their short form
//! (`[KEYID]`), device UUIDs (`[UUID]`), bundle and identity fingerprints (`[FP]`), root
//! fingerprints (sixteen groups of four hex digits, `[ROOT-FP]`), RFC 3339
//! times (`[TIME]`), other long hex strings (`[HEX]`). In the expected file, `[..]` matches
//! any text within a line and a line `...` any number of lines.
//!
//! `SNAPSHOTS=overwrite cargo test ...` writes the files from the actual output (review
//! them with `git diff`); a missing file fails the test with the text it would hold.

use std::path::PathBuf;

use crate::harness::{Run, World};

/// Where the snapshot files live.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("snapshots")
}

/// Replaces what differs between runs with placeholders (see the module docs).
pub fn normalize(world: &World, text: &str) -> String {
    let mut t = text.replace(&world.url(), "[URL]");
    t = t.replace(&world.root.display().to_string(), "[ROOT]");
    t.lines().map(normalize_line).collect::<Vec<_>>().join("\n")
}

fn is_hex(c: char) -> bool {
    c.is_ascii_digit() || ('a'..='f').contains(&c)
}

/// Length of the run of hex digits at the start of `s` (in chars = bytes, hex is ASCII).
fn hex_run(s: &str) -> usize {
    s.chars().take_while(|c| is_hex(*c)).count()
}

/// Whether `s` starts with hex groups of exactly these lengths joined by `sep`.
fn groups(s: &str, lens: &[usize], sep: char) -> Option<usize> {
    let mut at = 0;
    for (i, len) in lens.iter().enumerate() {
        if i > 0 {
            if !s[at..].starts_with(sep) {
                return None;
            }
            at += sep.len_utf8();
        }
        if hex_run(&s[at..]) != *len {
            return None;
        }
        at += len;
    }
    Some(at)
}

/// Whether `s` starts with an RFC 3339 time in whole seconds, UTC (`2026-03-01T10:20:30Z`).
fn time_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    let ok = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'Z';
    ok.then_some(20)
}

fn normalize_line(line: &str) -> String {
    let mut out = String::new();
    let mut i = 0;
    let mut prev_word = false;
    while i < line.len() {
        let rest = &line[i..];
        let c = rest.chars().next().unwrap_or(' ');
        if !prev_word {
            let found = [
                (groups(rest, &[4; 16], ' '), "[ROOT-FP]"),
                (groups(rest, &[8, 4, 4, 4, 12], '-'), "[UUID]"),
                (groups(rest, &[5, 5, 5, 5], '-'), "[FP]"),
                (groups(rest, &[8, 4], '…'), "[KEYID]"),
                (time_len(rest), "[TIME]"),
            ]
            .into_iter()
            .find_map(|(n, p)| n.map(|n| (n, p)));
            if let Some((n, placeholder)) = found {
                out.push_str(placeholder);
                i += n;
                prev_word = false;
                continue;
            }
            let run = hex_run(rest);
            if run >= 16 {
                out.push_str("[HEX]");
                i += run;
                continue;
            }
        }
        out.push(c);
        prev_word = c.is_alphanumeric() || c == '_';
        i += c.len_utf8();
    }
    out
}

/// The text of a run as the snapshot file holds it.
pub fn render(world: &World, run: &Run) -> String {
    format!(
        "$ {}\n? {}\n--- stdout\n{}\n--- stderr\n{}\n",
        normalize(world, &run.command_line),
        run.code,
        normalize(world, run.stdout.trim_end()),
        normalize(world, run.stderr.trim_end()),
    )
}

/// Whether `actual` matches `expected` (with `[..]` and `...` wildcards).
pub fn matches(expected: &str, actual: &str) -> bool {
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    fn line_matches(pattern: &str, line: &str) -> bool {
        let parts: Vec<&str> = pattern.split("[..]").collect();
        if parts.len() == 1 {
            return pattern == line;
        }
        let Some(mut rest) = line.strip_prefix(parts[0]) else {
            return false;
        };
        for (k, part) in parts.iter().enumerate().skip(1) {
            if k == parts.len() - 1 {
                return rest.ends_with(part);
            }
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        true
    }
    fn go(e: &[&str], a: &[&str]) -> bool {
        match e.split_first() {
            None => a.is_empty(),
            Some((&"...", more)) => (0..=a.len()).any(|skip| go(more, &a[skip..])),
            Some((p, more)) => a
                .split_first()
                .is_some_and(|(l, rest)| line_matches(p, l) && go(more, rest)),
        }
    }
    go(&e, &a)
}

/// Compares `run` with `tests/snapshots/<name>.md` (see the module docs).
#[track_caller]
pub fn assert_snapshot(world: &World, name: &str, run: &Run) {
    let actual = render(world, run);
    let path = dir().join(format!("{name}.md"));
    if std::env::var("SNAPSHOTS").as_deref() == Ok("overwrite") {
        std::fs::create_dir_all(dir()).expect("snapshot dir");
        std::fs::write(&path, &actual).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}\n(run with SNAPSHOTS=overwrite to create it)\n--- actual\n{actual}",
            path.display()
        )
    });
    assert!(
        matches(&expected, &actual),
        "snapshot {} differs (SNAPSHOTS=overwrite rewrites it)\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_wildcards() {
        assert_eq!(
            normalize_line("fp 3f9a1-0c2d4-77be0-19f3a key 3f2a9c01…a9c1 at 2026-03-01T10:20:30Z"),
            "fp [FP] key [KEYID] at [TIME]"
        );
        assert_eq!(
            normalize_line("uuid 0123abcd-0123-4567-89ab-0123456789ab txid 0123456789abcdef0123"),
            "uuid [UUID] txid [HEX]"
        );
        assert_eq!(
            normalize_line("version 12, tag beta"),
            "version 12, tag beta"
        );
        assert!(matches("a [..] c\n...\nz", "a b c\nx\ny\nz"));
        assert!(matches("a [..]", "a "));
        assert!(!matches("a [..] c", "a b d"));
        assert!(!matches("a\nb", "a"));
        assert!(matches("...", ""));
    }
}
