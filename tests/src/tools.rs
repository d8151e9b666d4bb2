//! The tools outside the Rust toolchain that some tests need, in one table.
//!
//! `cargo test --workspace` must pass on a machine that has only the Rust toolchain. A test
//! that needs one of these tools is marked
//! `#[cfg_attr(not(has_softhsm2), ignore = "SoftHSM2 not installed: …")]`: `tests/build.rs`
//! looks for each tool with [`Tool::locate`] and sets `cfg(has_<id>)` when it is there, so a
//! missing tool shows up in `cargo test`'s own output as *ignored, with the reason*, never as
//! a silent pass or a panic. With `CI=true` a missing tool is an error instead
//! ([`ci_problems`], run by a unit test of this crate), so CI cannot lose a suite unnoticed.
//!
//! Each tool is found through an environment variable naming its location, or else in its
//! usual places. The environment variables also hide a tool (point one at a path that does
//! not exist): that is how CI proves that a fresh machine passes (`.ci/fresh-machine`).
//!
//! This file is also compiled into `build.rs` (`#[path]`), so it uses `std` only.

#![allow(dead_code)] // build.rs uses only part of it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One tool outside the Rust toolchain.
#[derive(Debug)]
pub struct Tool {
    /// Short id: the cfg set when the tool is found is `has_<id>`.
    pub id: &'static str,
    /// The name people know it by.
    pub name: &'static str,
    /// Which tests need it.
    pub needed_by: &'static str,
    /// The environment variable that points at it (or, pointed elsewhere, hides it).
    pub env: &'static str,
    /// How to install it.
    pub install: &'static str,
    /// Whether a CI run (`CI=true`) fails when it is missing.
    pub required_in_ci: fn() -> bool,
    /// Finds the tool: the path given by its environment variable when set, else its usual
    /// places.
    finder: fn(&Tool, Option<PathBuf>) -> Result<Found, String>,
}

/// Where a tool was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The main file: the PKCS#11 module, the interpreter, the client binary.
    pub path: PathBuf,
    /// Helper programs found with it (e.g. `softhsm2-util`).
    pub helpers: Vec<PathBuf>,
}

/// SoftHSM2: a PKCS#11 module with throwaway file-backed tokens, for the PKCS#11 suites.
pub static SOFTHSM2: Tool = Tool {
    id: "softhsm2",
    name: "SoftHSM2",
    needed_by: "the PKCS#11 suites (keys on a token): tests/tests/workflows/pkcs11_*.rs",
    env: "OFFLINE_TUF_SOFTHSM2_MODULE",
    install: "apt-get install softhsm2 (Debian/Ubuntu), dnf install softhsm (Fedora), brew install softhsm (macOS)",
    required_in_ci: always,
    finder: find_softhsm2,
};

/// A Python 3 interpreter (standard library only), for the independent verifier.
pub static PYTHON3: Tool = Tool {
    id: "python3",
    name: "Python 3",
    needed_by: "the independent verifier of roots and targets: tests/tests/interop/independent_verifier.rs",
    env: "OFFLINE_TUF_PYTHON",
    install: "apt-get install python3 (Debian/Ubuntu), dnf install python3 (Fedora), brew install python (macOS)",
    required_in_ci: always,
    finder: find_python3,
};

/// The real `fioctl` (Foundries.io's client), for the conformance suite.
pub static FIOCTL: Tool = Tool {
    id: "fioctl",
    name: "fioctl",
    needed_by: "the conformance suite with the real client: tests/tests/interop/fioctl_*.rs",
    env: "OFFLINE_TUF_FIOCTL",
    install: "build it from github.com/foundriesio/fioctl (this workspace ships one in ../shared/tools/fioctl/)",
    // Required where the workspace ships it (see `default_fioctl`); elsewhere the suite is
    // reported as ignored, also in CI.
    required_in_ci: workspace_ships_fioctl,
    finder: find_fioctl,
};

/// Every tool, in the order the docs list them.
pub static ALL: &[&Tool] = &[&SOFTHSM2, &PYTHON3, &FIOCTL];

fn always() -> bool {
    true
}

/// Whether this workspace ships the real fioctl (see [`default_fioctl`]).
pub fn workspace_ships_fioctl() -> bool {
    default_fioctl().exists()
}

/// Where this workspace keeps the real fioctl: `../shared/tools/fioctl/fioctl` next to the
/// repository.
pub fn default_fioctl() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..")
        .join("shared")
        .join("tools")
        .join("fioctl")
        .join("fioctl")
}

/// The places distributions install the SoftHSM2 module.
pub const SOFTHSM2_MODULE_PLACES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
];

impl Tool {
    /// Finds the tool: at the path its environment variable names when set (nowhere else),
    /// otherwise in its usual places. The error says where it looked.
    pub fn locate(&self) -> Result<Found, String> {
        self.locate_at(env_path(self.env))
    }

    /// Finds the tool at `given` (what its environment variable would name), or in its usual
    /// places when `None`.
    pub fn locate_at(&self, given: Option<PathBuf>) -> Result<Found, String> {
        (self.finder)(self, given)
    }

    /// The cfg that `build.rs` sets when the tool is found.
    pub fn cfg(&self) -> String {
        format!("has_{}", self.id)
    }

    /// One line for a missing tool: what it is, where we looked, how to get it.
    pub fn missing_line(&self, why: &str) -> String {
        format!(
            "{} not installed ({why}); needed by {}; install: {}; or set {} to its path",
            self.name, self.needed_by, self.install, self.env
        )
    }

    /// The tool's location for a test that `build.rs` enabled; panics with one line if the
    /// tool has gone since the tests were built.
    pub fn require(&self) -> Found {
        self.locate().unwrap_or_else(|why| {
            panic!(
                "{} was found when the tests were built but is gone now ({why}); \
                 reinstall it, or rebuild the tests (touch tests/build.rs) to mark them ignored",
                self.name
            )
        })
    }
}

/// The value of `env` when set and not empty.
fn env_path(env: &str) -> Option<PathBuf> {
    std::env::var_os(env)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The first executable named `name` in the directories of `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

fn find_softhsm2(tool: &Tool, given: Option<PathBuf>) -> Result<Found, String> {
    let module = match given {
        Some(p) if p.is_file() => p,
        Some(p) => return Err(format!("{}={} does not exist", tool.env, p.display())),
        None => SOFTHSM2_MODULE_PLACES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or_else(|| {
                format!(
                    "no {} nor in {} other usual places",
                    SOFTHSM2_MODULE_PLACES[0],
                    SOFTHSM2_MODULE_PLACES.len() - 1
                )
            })?,
    };
    let util = on_path("softhsm2-util").ok_or_else(|| {
        format!(
            "{} exists but softhsm2-util is not on PATH",
            module.display()
        )
    })?;
    Ok(Found {
        path: module,
        helpers: vec![util],
    })
}

fn find_python3(tool: &Tool, given: Option<PathBuf>) -> Result<Found, String> {
    let python = match given {
        Some(p) => p,
        None => on_path("python3").ok_or("no python3 on PATH")?,
    };
    let runs = Command::new(&python)
        .args([
            "-c",
            "import sys; sys.exit(0 if sys.version_info >= (3, 8) else 1)",
        ])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !runs {
        return Err(format!(
            "{}={} does not run as Python 3.8 or later",
            tool.env,
            python.display()
        ));
    }
    Ok(Found {
        path: python,
        helpers: vec![],
    })
}

fn find_fioctl(tool: &Tool, given: Option<PathBuf>) -> Result<Found, String> {
    let fioctl = match given {
        Some(p) => p,
        None => {
            let p = default_fioctl();
            if !p.exists() {
                return Err(format!("no {} (outside this workspace)", p.display()));
            }
            p
        }
    };
    let runs = Command::new(&fioctl)
        .arg("--help")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !runs {
        return Err(format!("{}={} does not run", tool.env, fioctl.display()));
    }
    Ok(Found {
        path: fioctl,
        helpers: vec![],
    })
}

/// Whether this run is a CI run (`CI` set to `true`, `1` or `yes`, as CI services do).
pub fn is_ci() -> bool {
    std::env::var("CI")
        .map(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
        .unwrap_or(false)
}

/// What a CI run must refuse, one line each: a required tool that is missing now, or a tool
/// whose presence differs from what `build.rs` saw (`built_with` lists the ids it found), so
/// that a suite could be ignored although the tool is there, or run although it is not.
pub fn ci_problems(built_with: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    for tool in ALL {
        let now = tool.locate();
        let built = built_with.contains(&tool.id);
        let required = (tool.required_in_ci)();
        match (&now, built) {
            (Err(why), _) if required => {
                problems.push(format!("CI=true but {}", tool.missing_line(why)))
            }
            (Ok(found), false) => problems.push(format!(
                "{} is at {} but the tests were built without it: rebuild them (touch tests/build.rs)",
                tool.name,
                found.path.display()
            )),
            (Err(why), true) => problems.push(format!(
                "the tests were built with {} but it is gone ({why}): rebuild them (touch tests/build.rs)",
                tool.name
            )),
            _ => {}
        }
    }
    problems
}
