//! fioctl habits: a flag that fioctl takes but that belongs to the online half (or does not
//! exist here) is answered with what to do instead, rather than with clap's "unexpected
//! argument". Only arguments clap refused are looked up, so nothing valid is ever caught.

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// What to say about a flag the signer does not take: (spellings, advice).
const OTHER_HALF: &[(&[&str], &str)] = &[
    (
        &["--txid", "-x"],
        "the transaction id belongs to the online side: the request bundle carries it (`courier updates pull -x TXID` writes it)",
    ),
    (
        &["--changelog", "-m"],
        "the changelog is given when the transaction starts, online: `courier updates init -m MESSAGE` or `courier rotate-offline-key -m MESSAGE`",
    ),
    (
        &["--factory", "-f", "--token", "-t", "--api-url", "--config", "-c"],
        "the signer never talks to the Factory: factory, token and server settings are the courier's, on the online machine",
    ),
    (
        &["--sign", "-s"],
        "the signer signs the roots whenever root keys are given (`--keys`): there is no --sign",
    ),
    (
        &["--bundle"],
        "the signer reads the bundle as its last argument and writes the response with `-o FILE`; `--bundle` is the courier's",
    ),
    (
        &["--waves"],
        "sign a wave with `signer sign-wave NAME` (one per wave); `--waves` is for the courier's `prod-targets pull`",
    ),
    (
        &["--expires-days", "-e", "--expires-at", "-E", "--prune", "--source-tag", "--dry-run"],
        "a wave is created on the online machine (`courier waves init NAME VERSION TAG -e DAYS`); the signer signs it with `signer sign-wave NAME`",
    ),
    (
        &["-y"],
        "means --key-type here, as in fioctl, and only for commands that create a key; to answer yes to confirmations write --yes",
    ),
];

/// The advice for the argument clap refused in `err`, when it is one of fioctl's flags the
/// signer does not take (also in the `--flag=value` form).
pub fn explain(err: &clap::Error) -> Option<String> {
    if err.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(arg)) = err.get(ContextKind::InvalidArg) else {
        return None;
    };
    let flag = arg.split('=').next().unwrap_or(arg);
    OTHER_HALF
        .iter()
        .find(|(spellings, _)| spellings.contains(&flag))
        .map(|(_, advice)| format!("{flag}: {advice}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn advice(args: &[&str]) -> Option<String> {
        let mut all = vec!["signer"];
        all.extend_from_slice(args);
        explain(&Cli::try_parse_from(all).expect_err("refused"))
    }

    #[test]
    fn fioctl_flags_of_the_online_half_are_explained() {
        let rotate = [
            "rotate-offline-key",
            "--role",
            "root",
            "--keys",
            "k.tgz",
            "b",
            "-o",
            "o",
        ];
        for (flag, says) in [
            ("--txid=abc", "request bundle carries it"),
            ("--sign", "whenever root keys are given"),
            ("-m", "courier updates init -m"),
            ("--factory", "never talks to the Factory"),
        ] {
            let mut args = rotate.to_vec();
            args.push(flag);
            let text = advice(&args).unwrap_or_else(|| panic!("{flag} not explained"));
            assert!(text.contains(says), "{flag}: {text}");
        }
        let text = advice(&["-y", "sign", "b", "-o", "o"]).unwrap();
        assert!(text.contains("write --yes"), "{text}");
    }

    #[test]
    fn other_refusals_keep_clap_s_message() {
        assert!(advice(&["rotate-offline-key", "--role", "snapshot"]).is_none());
        assert!(advice(&["rotate-offline-key", "--no-such-flag"]).is_none());
    }

    #[test]
    fn fioctl_spellings_that_do_not_clash_are_accepted() {
        let cli = Cli::try_parse_from([
            "signer",
            "rotate-offline-key",
            "-r",
            "targets",
            "-k",
            "r.tgz",
            "-K",
            "t.tgz",
            "-y",
            "RSA",
            "b",
            "-o",
            "o",
        ])
        .unwrap();
        let crate::cli::Command::RotateOfflineKey(a) = cli.command else {
            panic!("parsed as another command")
        };
        assert_eq!(a.key_type, crate::cli::KeyTypeArg::Rsa);
        assert!(a.src.targets_keys.is_some());
        let id = "ab".repeat(32);
        Cli::try_parse_from([
            "signer",
            "delete-offline-key",
            "--role",
            "root",
            "--key-id",
            &id,
            "b",
            "-o",
            "o",
        ])
        .unwrap();
    }
}
