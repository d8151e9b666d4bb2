//! fioctl habits: a fioctl flag or expert subcommand given to the courier that belongs to
//! the offline half is answered with the signer command that takes it.
//!
//! fioctl does everything on one machine, so its `keys tuf` commands take the keys files
//! (`-k/--keys`, `-K/--targets-keys`), sign (`-s/--sign`) and choose the new offline key's
//! type (`-y/--key-type`). Here those belong to `signer` on the offline machine. Where a
//! fioctl flag means what a courier flag means, the courier accepts fioctl's spelling (see
//! [`crate::cli`]: `-y RSA|ED25519` for `updates rotate-online-key`, `-i/--key-id` for
//! `updates pull`, `-S/--status` and `-T/--tag` for `waves list`).
//!
//! Which half takes each fioctl flag of `keys tuf rotate-offline-key`, `keys tuf updates *`
//! and `waves init/sign`:
//!
//! | fioctl flag | courier | signer |
//! |---|---|---|
//! | `-r/--role`, `--first-time`, `-m/--changelog`, `-x/--txid` | yes | `--role`, `--first-time` |
//! | `-k/--keys`, `-K/--targets-keys` | no: keys stay offline | yes |
//! | `-s/--sign` | no: signing happens offline | every signing command |
//! | `-y/--key-type` | `updates rotate-online-key` (the server's online keys) | the new offline key (`rotate-offline-key`, `add-offline-key`) |
//! | `-i/--key-id` | `updates pull --keyid` (also `--key-id`, `-i`) | `delete-offline-key --keyid` |
//! | `--tags`, `--waves` | `updates pull`, `prod-targets pull` | `sign-prod-targets --tags` |
//! | `waves init -e/-E/-d/--prune/--source-tag` | yes | — |
//!
//! This works on clap's own error: normal parsing and `--help` are unchanged; only an
//! unknown argument or subcommand that is one of fioctl's is explained ([`explain`]).

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::CommandFactory;

use crate::cli::Cli;

/// A fioctl flag or subcommand given to the courier that belongs to the signer (usage error,
/// exit code 2).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WrongHalf(pub String);

/// The subcommand path (`["updates", "pull"]`) the arguments name, skipping options and
/// their values; it stops at the first word that is not a subcommand.
fn subcommand_path(args: &[String]) -> Vec<String> {
    let mut cmd = Cli::command();
    cmd.build();
    let mut cur = &cmd;
    let mut path = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "--" {
            break;
        }
        if a.len() > 1 && a.starts_with('-') {
            let takes_value = |matches: &dyn Fn(&clap::Arg) -> bool| {
                cur.get_arguments()
                    .find(|x| matches(x))
                    .is_some_and(|x| x.get_action().takes_values())
            };
            let takes = match a.strip_prefix("--") {
                Some(long) if !long.contains('=') => takes_value(&|x| x.get_long() == Some(long)),
                Some(_) => false,
                None => {
                    a.chars().count() == 2 && takes_value(&|x| x.get_short() == a.chars().nth(1))
                }
            };
            i += if takes { 2 } else { 1 };
            continue;
        }
        match cur.find_subcommand(a) {
            Some(sub) => {
                path.push(sub.get_name().to_string());
                cur = sub;
                i += 1;
            }
            None => break,
        }
    }
    path
}

/// The signer command that does the offline half of a courier command.
fn signer_side(path: &[&str]) -> &'static str {
    match path {
        ["rotate-offline-key"] => "signer rotate-offline-key",
        ["updates", "init"] => "signer rotate-offline-key --role root --first-time",
        ["updates", "rotate-online-key"] => "signer rotate-online-key",
        ["prod-targets", "pull"] => "signer sign-prod-targets",
        ["waves", "init"] | ["waves", "sign"] => "signer sign-wave NAME",
        _ => "signer",
    }
}

/// The explanation for fioctl flag `flag` (long name, without dashes) given to the courier
/// command `path`, if it is one of fioctl's that belongs to the signer.
fn flag_habit(path: &[&str], flag: &str) -> Option<String> {
    let signer = signer_side(path);
    let targets_keys_command = matches!(path, ["waves", ..] | ["prod-targets", ..]);
    Some(match flag {
        // fioctl's waves and sign-prod-targets `-k` is the targets keys file.
        "keys" if targets_keys_command => format!(
            "keys stay on the offline machine: give the targets keys to `{signer} --targets-keys FILE` there"
        ),
        "keys" if path == ["updates", "init"] => format!(
            "keys stay on the offline machine: the initial root key travels encrypted in the request bundle; give --keys to `{signer}` there"
        ),
        "keys" | "targets-keys" => {
            format!("keys stay on the offline machine: give --{flag} to `{signer}` there")
        }
        "sign" => format!(
            "signing happens on the offline machine: write a request bundle here (`courier updates pull --bundle FILE`) and sign it with `{}` there",
            if signer == "signer" { "signer sign" } else { signer }
        ),
        "key-type" => format!(
            "the new offline key is created on the offline machine: give --key-type to `{}` there (the courier's --key-type is only for the server's online keys, `courier updates rotate-online-key`)",
            if signer == "signer" { "signer rotate-offline-key" } else { signer }
        ),
        _ => return None,
    })
}

/// fioctl's long name for a short flag (`-k` → `keys`), for the flags [`flag_habit`] knows.
fn fioctl_long(short: char) -> Option<&'static str> {
    Some(match short {
        'k' => "keys",
        'K' => "targets-keys",
        's' => "sign",
        'y' => "key-type",
        _ => return None,
    })
}

/// The explanation for fioctl expert subcommand `sub` typed after `courier updates`.
fn subcommand_habit(path: &[&str], sub: &str) -> Option<String> {
    if path.is_empty() && sub == "keys" {
        return Some(
            "the courier's commands are fioctl's `keys tuf ...` without `keys tuf`: e.g. `courier rotate-offline-key`, `courier updates status`, `courier show-root`".into(),
        );
    }
    if path != ["updates"] {
        return None;
    }
    let (pull, signer) = match sub {
        "rotate-offline-key" => (
            "courier updates pull --op rotate-root|rotate-targets --bundle FILE",
            "signer rotate-offline-key --role ROLE --keys ...",
        ),
        "add-offline-key" => (
            "courier updates pull --op add-root-key|add-targets-key --bundle FILE",
            "signer add-offline-key --role ROLE --keys ...",
        ),
        "delete-offline-key" => (
            "courier updates pull --op delete-root-key|delete-targets-key --keyid KEYID --bundle FILE",
            "signer delete-offline-key --role ROLE --keyid KEYID --keys ...",
        ),
        "set-threshold" => (
            "courier updates pull --op set-root-threshold|set-targets-threshold --threshold N --bundle FILE",
            "signer set-threshold --role ROLE N --keys ...",
        ),
        "sign" => (
            "courier updates pull --bundle FILE",
            "signer sign --keys root.keys.tgz FILE -o RESPONSE",
        ),
        "sign-prod-targets" => (
            "courier prod-targets pull --bundle FILE",
            "signer sign-prod-targets --targets-keys targets.keys.tgz FILE -o RESPONSE",
        ),
        _ => return None,
    };
    Some(format!(
        "`fioctl keys tuf updates {sub}` is split in two here: `{pull}` on this machine, then `{signer}` on the offline machine, then `courier updates push RESPONSE`"
    ))
}

/// Explains a clap error about `args` when its cause is a fioctl flag or subcommand that
/// belongs to the signer; `None` for every other error (clap's own message is right then).
pub fn explain(args: &[String], err: &clap::Error) -> Option<WrongHalf> {
    let invalid = |kind: ContextKind| match err.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let path = subcommand_path(args);
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    match err.kind() {
        ErrorKind::UnknownArgument => {
            let arg = invalid(ContextKind::InvalidArg)?;
            let name = arg.split('=').next().unwrap_or(&arg);
            let flag = match name.strip_prefix("--") {
                Some(long) => long.to_string(),
                None => fioctl_long(name.strip_prefix('-')?.chars().next()?)?.to_string(),
            };
            flag_habit(&path, &flag).map(WrongHalf)
        }
        ErrorKind::InvalidSubcommand => {
            let sub = invalid(ContextKind::InvalidSubcommand)?;
            subcommand_habit(&path, &sub).map(WrongHalf)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn explained(args: &[&str]) -> Option<String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let err = Cli::try_parse_from(&args).expect_err("a parse error");
        explain(&args, &err).map(|w| w.0)
    }

    #[test]
    fn signer_flags_name_the_signer_command() {
        let m = explained(&["courier", "rotate-offline-key", "--keys", "k.tgz"]).unwrap();
        assert!(
            m.contains("give --keys to `signer rotate-offline-key`"),
            "{m}"
        );
        let m = explained(&["courier", "-f", "acme", "rotate-offline-key", "-K", "t.tgz"]).unwrap();
        assert!(
            m.contains("give --targets-keys to `signer rotate-offline-key`"),
            "{m}"
        );
        let m = explained(&[
            "courier",
            "updates",
            "rotate-online-key",
            "-r",
            "targets",
            "-s",
        ])
        .unwrap();
        assert!(m.contains("`signer rotate-online-key`"), "{m}");
        let m = explained(&["courier", "waves", "init", "-k", "x", "w", "1", "t"]).unwrap();
        assert!(
            m.contains("signer sign-wave NAME --targets-keys FILE"),
            "{m}"
        );
        let m = explained(&["courier", "rotate-offline-key", "-y", "rsa"]).unwrap();
        assert!(
            m.contains("give --key-type to `signer rotate-offline-key`"),
            "{m}"
        );
        let m = explained(&["courier", "updates", "sign", "-k", "x"]).unwrap();
        assert!(
            m.contains("`signer sign --keys root.keys.tgz FILE -o RESPONSE`"),
            "{m}"
        );
        let m = explained(&["courier", "keys", "tuf", "show-root"]).unwrap();
        assert!(m.contains("without `keys tuf`"), "{m}");
        // Other mistakes keep clap's own message.
        assert_eq!(
            explained(&["courier", "rotate-offline-key", "--nope"]),
            None
        );
        assert_eq!(explained(&["courier", "updates", "frobnicate"]), None);
    }

    #[test]
    fn the_path_skips_options_and_their_values() {
        let args: Vec<String> = [
            "courier",
            "-f",
            "updates",
            "--timeout",
            "3",
            "updates",
            "pull",
            "-b",
            "x",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(subcommand_path(&args), vec!["updates", "pull"]);
    }
}
