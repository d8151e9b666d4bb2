//! The signer runs on an air-gapped machine and must not link any network code:
//! `cargo tree -p signer -e normal` may not contain an HTTP client, an async runtime or a
//! socket library. `cargo test` always provides cargo (`CARGO`), so this never skips.

use std::path::Path;
use std::process::Command;

/// Crates whose presence means network code is linked.
const FORBIDDEN: &[&str] = &[
    "reqwest",
    "hyper",
    "hyper-util",
    "tokio",
    "mio",
    "socket2",
    "ureq",
    "curl",
    "h2",
];

#[test]
fn signer_links_no_network_crates() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = Command::new(&cargo)
        .args([
            "tree",
            "-p",
            "signer",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(&workspace)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cargo} tree: {e}"));
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8_lossy(&output.stdout);
    assert!(tree.lines().any(|l| l.starts_with("shared v")), "{tree}");
    let found: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| FORBIDDEN.contains(name))
        .collect();
    assert!(
        found.is_empty(),
        "the signer links network crates: {found:?}\n{tree}"
    );
}
