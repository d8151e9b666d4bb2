//! What the fioctl suites share: running fioctl on the online machine, its success line, and
//! the checks after each applied change.

use std::path::Path;

use shared::keys::KeyId;
use shared::metadata::Role;
use tests::harness::{path_str, Run, World};

/// What fioctl prints when a transaction was applied.
pub const APPLIED: &str = "The staged TUF root updates were applied to your Factory.";

/// `fioctl ARGS` on the online machine (the fioctl user's machine: keys and network in one
/// place, as fioctl works), which must succeed.
pub fn fio(w: &World, args: &[&str]) -> Run {
    w.fioctl(&w.online, args).ok()
}

/// `fioctl keys tuf rotate-offline-key --role ROLE [--first-time] --keys KEYS
/// [--targets-keys T]`, not checked (a refusal is tested with it too).
pub fn fioctl_rotate(
    w: &World,
    role: &str,
    first_time: bool,
    keys: &Path,
    targets_keys: Option<&Path>,
) -> Run {
    let mut args = vec!["keys", "tuf", "rotate-offline-key", "--role", role];
    if first_time {
        args.push("--first-time");
    }
    args.extend(["--keys", path_str(keys)]);
    if let Some(t) = targets_keys {
        args.extend(["--targets-keys", path_str(t)]);
    }
    w.fioctl(&w.online, &args)
}

/// [`fioctl_rotate`], which must succeed and print fioctl's success line.
pub fn fioctl_rotated(
    w: &World,
    role: &str,
    first_time: bool,
    keys: &Path,
    targets_keys: Option<&Path>,
) -> Run {
    fioctl_rotate(w, role, first_time, keys, targets_keys)
        .ok()
        .says(APPLIED)
}

/// Checks what a device checks, and that the served CI and production roots are `version`.
#[track_caller]
pub fn served(w: &World, version: u64) {
    let report = w.device_check();
    assert_eq!(
        (report.ci_version, report.prod_version),
        (version, version),
        "{report:?}"
    );
}

/// A wave released with fioctl: `fioctl waves init -k KEYS NAME VERSION TAG`, then `fioctl
/// waves complete NAME` (tag `tag` then serves the wave's targets).
pub fn fioctl_release(w: &World, keys: &Path, (name, version, tag): (&str, &str, &str)) {
    fio(
        w,
        &["waves", "init", "-k", path_str(keys), name, version, tag],
    );
    fio(w, &["waves", "complete", name]);
}

/// The role's key ids in the served CI root.
pub fn role_keys(w: &World, role: Role) -> Vec<KeyId> {
    w.view()
        .ci_root()
        .expect("ci root")
        .signed
        .role_keyids(role)
        .to_vec()
}
