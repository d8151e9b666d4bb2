//! Looks for the tools outside the Rust toolchain that some tests need (`src/tools.rs`, the
//! one table of them) and sets `cfg(has_<tool>)` for each one found, so that tests needing a
//! missing tool are reported as ignored, with the reason, instead of failing.
//!
//! Cargo reruns this script when a tool's environment variable changes, when a tool found
//! last time changes or disappears, and when Debian's package database changes (an
//! `apt-get install` of the tool). After installing a tool some other way, `touch
//! tests/build.rs` or set the tool's environment variable.

#[path = "src/tools.rs"]
mod tools;

use std::path::Path;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=src/tools.rs");
    for place in ["/var/lib/dpkg/status"] {
        if Path::new(place).exists() {
            println!("cargo::rerun-if-changed={place}");
        }
    }
    let mut found = Vec::new();
    for tool in tools::ALL {
        println!("cargo::rustc-check-cfg=cfg({})", tool.cfg());
        println!("cargo::rerun-if-env-changed={}", tool.env);
        if let Ok(f) = tool.locate() {
            println!("cargo::rustc-cfg={}", tool.cfg());
            for p in std::iter::once(&f.path).chain(&f.helpers) {
                println!("cargo::rerun-if-changed={}", p.display());
            }
            found.push(tool.id);
        }
    }
    // What was found, for the CI check that compares it with what is there at run time.
    println!(
        "cargo::rustc-env=OFFLINE_TUF_TOOLS_BUILT_WITH={}",
        found.join(",")
    );
}
