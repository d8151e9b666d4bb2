//! Malicious archives (issue 10, part 2), fed to the public readers
//! ([`TransferBundle::from_bytes`], [`KeysTarball::from_bytes`]), plain and gzip-compressed.
//!
//! Every archive is built here from raw 512-byte tar headers, so nothing in the writer can
//! soften it: path traversal, absolute paths, symbolic and hard links (also pointing
//! outside), character and block devices, FIFOs, GNU and pax sparse members, members
//! declaring a huge size, gzip bombs, names with NUL or non-UTF-8 bytes (via pax and GNU
//! long-name records, the only ways to write them), and names that differ only in letter
//! case. Each must be refused with an error naming the member and the problem, and without
//! holding memory the input did not pay for (measured with a counting allocator). The
//! archives are one table of named cases: every one is tried, and all that fail are named.

#[macro_use]
mod common;

use std::io::Write;

use shared::archive::{self, Limits};
use shared::bundle::TransferBundle;
use shared::tarball::KeysTarball;
use shared::test_support::cases::{run_cases, Case};

#[global_allocator]
static METER: common::Meter = common::Meter;

/// One raw USTAR header block: `name` (≤ 100 bytes), entry `kind`, declared `size`,
/// `link` target; the checksum is computed.
fn header(name: &[u8], kind: u8, size: u64, link: &[u8]) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name);
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    if size < 0o77777777777 {
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    } else {
        // GNU base-256 for sizes beyond 8 GiB.
        h[124] = 0x80;
        h[128..136].copy_from_slice(&size.to_be_bytes());
    }
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// An entry: header plus `data` padded to the block size.
fn entry(name: &[u8], kind: u8, data: &[u8], link: &[u8]) -> Vec<u8> {
    let mut out = header(name, kind, data.len() as u64, link).to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(512), 0);
    out
}

/// A pax extended header (`x`) carrying `key=value` for the entry after it.
fn pax(key: &str, value: &[u8]) -> Vec<u8> {
    let body_len = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body_len + 1;
    while len != body_len + len.to_string().len() {
        len = body_len + len.to_string().len();
    }
    let mut record = format!("{len} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    entry(b"PaxHeaders/x", b'x', &record, b"")
}

/// A whole archive: the entries, then the end-of-archive marker.
fn tar(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out: Vec<u8> = entries.concat();
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A regular key-file entry, to put the hostile one after something ordinary.
fn ordinary() -> Vec<u8> {
    entry(b"tufrepo/keys/ok.pub", b'0', b"{}", b"")
}

/// Feeds `archive` (plain and gzip) to both readers; each must refuse it with a message
/// containing every one of `needles` (member name and problem), without holding more than
/// a bounded amount of memory.
fn refused(label: &str, archive: &[u8], needles: &[&str]) -> usize {
    let mut checked = 0;
    for (form, bytes) in [("tar", archive.to_vec()), ("tar.gz", gzip(archive))] {
        let (bundle, peak_b) = common::peak_during(|| TransferBundle::from_bytes(&bytes));
        let (keys, peak_k) = common::peak_during(|| KeysTarball::from_bytes(&bytes));
        let errors = [
            (
                "bundle",
                bundle.map(|_| ()).map_err(|e| e.to_string()),
                peak_b,
            ),
            ("keys", keys.map(|_| ()).map_err(|e| e.to_string()), peak_k),
        ];
        for (reader, result, peak) in errors {
            let err = result
                .err()
                .unwrap_or_else(|| panic!("{label} ({form}): the {reader} reader accepted it"));
            for needle in needles {
                assert!(
                    err.contains(needle),
                    "{label} ({form}, {reader}): error does not mention {needle:?}: {err}"
                );
            }
            assert!(
                !err.contains('\n'),
                "{label} ({form}, {reader}): not one line: {err}"
            );
            assert!(
                peak <= 4 * 1024 * 1024 + 16 * archive.len(),
                "{label} ({form}, {reader}): held {peak} bytes"
            );
            checked += 1;
        }
    }
    eprintln!("malicious_archives: {label}: refused by both readers, plain and gzip");
    checked
}

#[test]
fn hostile_entries_are_refused_naming_member_and_problem() {
    let mut n = 0;
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "path traversal",
            tar(&[
                ordinary(),
                entry(b"tufrepo/../../etc/passwd", b'0', b"x", b""),
            ]),
            vec!["tufrepo/../../etc/passwd", "'..'"],
        ),
        (
            "leading ../",
            tar(&[entry(b"../evil.pub", b'0', b"x", b"")]),
            vec!["../evil.pub", "'..'"],
        ),
        (
            "absolute path",
            tar(&[entry(b"/etc/cron.d/evil", b'0', b"x", b"")]),
            vec!["/etc/cron.d/evil", "absolute"],
        ),
        (
            "symlink inside",
            tar(&[
                ordinary(),
                entry(b"tufrepo/keys/a.pub", b'2', b"", b"ok.pub"),
            ]),
            vec!["tufrepo/keys/a.pub", "symbolic link", "ok.pub"],
        ),
        (
            "symlink outside",
            tar(&[entry(
                b"tufrepo/keys/a.sec",
                b'2',
                b"",
                b"/root/.ssh/id_ed25519",
            )]),
            vec![
                "tufrepo/keys/a.sec",
                "symbolic link",
                "/root/.ssh/id_ed25519",
            ],
        ),
        (
            "hardlink outside",
            tar(&[entry(b"manifest.json", b'1', b"", b"../../etc/shadow")]),
            vec!["manifest.json", "hard link", "../../etc/shadow"],
        ),
        (
            "character device",
            tar(&[entry(b"tufrepo/keys/tty", b'3', b"", b"")]),
            vec!["tufrepo/keys/tty", "character device"],
        ),
        (
            "block device",
            tar(&[entry(b"tufrepo/keys/sda", b'4', b"", b"")]),
            vec!["tufrepo/keys/sda", "block device"],
        ),
        (
            "FIFO",
            tar(&[ordinary(), entry(b"tufrepo/keys/pipe", b'6', b"", b"")]),
            vec!["tufrepo/keys/pipe", "FIFO"],
        ),
        (
            "GNU sparse member",
            tar(&[entry(b"tufrepo/keys/big.sec", b'S', b"", b"")]),
            vec!["tufrepo/keys/big.sec", "sparse"],
        ),
        (
            "pax sparse member",
            tar(&[
                pax("GNU.sparse.realsize", b"1099511627776"),
                entry(b"tufrepo/keys/big.sec", b'0', b"", b""),
            ]),
            vec!["tufrepo/keys/big.sec", "sparse"],
        ),
        (
            "NUL in a name (pax path)",
            tar(&[
                pax("path", b"tufrepo/keys/a.pub\0../../x"),
                entry(b"tufrepo/keys/a.pub", b'0', b"{}", b""),
            ]),
            vec!["tufrepo/keys/a.pub", "NUL"],
        ),
        (
            "non-UTF-8 name (GNU long name)",
            tar(&[
                entry(b"././@LongLink", b'L', b"tufrepo/keys/\xff\xfe.pub\0", b""),
                entry(b"tufrepo/keys/x.pub", b'0', b"{}", b""),
            ]),
            vec!["tufrepo/keys/", "not valid UTF-8"],
        ),
        (
            "control character in a name",
            tar(&[entry(b"tufrepo/keys/a\x1b[2J.pub", b'0', b"{}", b"")]),
            vec!["tufrepo/keys/a", "control character"],
        ),
        (
            "case-only duplicate",
            tar(&[
                entry(b"tufrepo/keys/First-Root.pub", b'0', b"{}", b""),
                entry(b"tufrepo/keys/first-root.pub", b'0', b"{}", b""),
            ]),
            vec!["tufrepo/keys/first-root.pub", "duplicate", "First-Root.pub"],
        ),
        (
            "exact duplicate",
            tar(&[ordinary(), ordinary()]),
            vec!["tufrepo/keys/ok.pub", "duplicate"],
        ),
        (
            "pax global header",
            tar(&[entry(b"pax_global_header", b'g', b"11 path=a\n", b"")]),
            vec!["pax_global_header", "global"],
        ),
        (
            // 16 TiB declared in base-256 with no data behind it: refused by size before
            // anything is allocated.
            "huge declared member",
            {
                let mut t = header(b"tufrepo/keys/huge.sec", b'0', 1 << 44, b"").to_vec();
                t.extend_from_slice(&[0u8; 1024]);
                t
            },
            vec!["tufrepo/keys/huge.sec", "more than the limit"],
        ),
        (
            // Within the member limit of neither reader's total but with no data.
            "member data missing",
            {
                let mut t = header(b"tufrepo/keys/short.sec", b'0', 500_000, b"").to_vec();
                t.extend_from_slice(&[b'a'; 512]);
                t
            },
            vec!["tufrepo/keys/short.sec", "truncated"],
        ),
    ];
    let cases: Vec<Case<_>> = cases
        .into_iter()
        .map(|(label, archive, needles)| Case::new(label, (archive, needles)))
        .collect();
    let total = run_cases("malicious_archives", &cases, |label, (archive, needles)| {
        n += refused(label, archive, needles)
    });
    report!("malicious_archives: {total} hostile archives, {n} refusals checked (2 readers x plain/gzip)");
}

/// A gzip bomb: a few KB that expand to 4 GiB of zeros (one tar member declaring it). Both
/// readers stop at their decompression bound, and hold at most about that bound — never the
/// gigabytes.
#[test]
fn gzip_bombs_stop_at_the_limit() {
    let expanded: u64 = 4 << 30;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&header(b"tufrepo/keys/bomb.sec", b'0', 8 << 30, b""))
        .unwrap();
    let zeros = vec![0u8; 1 << 20];
    let mut written = 512u64;
    while written < expanded {
        enc.write_all(&zeros).unwrap();
        written += zeros.len() as u64;
    }
    let bomb = enc.finish().unwrap();
    assert!(bomb.len() < 8 << 20, "bomb is {} bytes", bomb.len());

    let bound = |limits: &Limits| -> usize {
        // Growing a Vec doubles its capacity: at most twice the bound, plus slack.
        2 * limits.max_stream_size() as usize + (1 << 20)
    };
    let (keys, peak) = common::peak_during(|| KeysTarball::from_bytes(&bomb));
    let err = keys.expect_err("keys reader accepted a bomb").to_string();
    assert!(err.contains("gzip bomb"), "{err}");
    assert!(
        peak <= bound(&shared::tarball::LIMITS),
        "keys reader held {peak} bytes"
    );
    let keys_peak = peak;

    let (bundle, peak) = common::peak_during(|| TransferBundle::from_bytes(&bomb));
    let err = bundle
        .expect_err("bundle reader accepted a bomb")
        .to_string();
    assert!(err.contains("gzip bomb"), "{err}");
    assert!(
        peak <= bound(&shared::bundle::LIMITS),
        "bundle reader held {peak} bytes"
    );
    report!(
        "malicious_archives: gzip bomb of {} bytes (expanding to {expanded} bytes) refused; peak memory {} MiB (keys reader), {} MiB (bundle reader)",
        bomb.len(),
        keys_peak >> 20,
        peak >> 20
    );
}

/// Through the archive layer's own limits: more entries than allowed, and members adding up
/// beyond the total, each refused naming the limit.
#[test]
fn entry_count_and_total_size_are_bounded() {
    let limits = Limits::new(3, 1024, 2048);
    let many: Vec<Vec<u8>> = (0..4)
        .map(|i| entry(format!("m{i}").as_bytes(), b'0', b"x", b""))
        .collect();
    let err = archive::read(&tar(&many), &limits).unwrap_err().to_string();
    assert!(err.contains("more than 3 entries"), "{err}");
    let big: Vec<Vec<u8>> = (0..3)
        .map(|i| entry(format!("m{i}").as_bytes(), b'0', &[b'x'; 1000], b""))
        .collect();
    let err = archive::read(&tar(&big), &limits).unwrap_err().to_string();
    assert!(err.contains("\"m2\"") && err.contains("2048"), "{err}");
}
