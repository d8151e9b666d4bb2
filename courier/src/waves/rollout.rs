//! `courier waves rollout`: a wave rolled out to a subset of the production devices of its
//! tag (fioctl `waves rollout`). The arguments are read like fioctl reads them
//! ([`rollout_options`]) and refused before any request; the server picks the devices.

use crate::api::{one_line, RolloutOptions};
use crate::cli::WavesRolloutArgs;
use crate::error::{CourierError, Result};
use crate::Ctx;

/// Device UUIDs and names accepted in one rollout (the API's limit).
pub const MAX_ROLLOUT_DEVICES: usize = 10_000;

/// Why rollout arguments are refused (before any request).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RolloutError {
    /// No subset of devices was given.
    #[error("give at least one of --group, --limit and --uuids (to roll out to every device of the tag, complete the wave: `courier waves complete NAME`)")]
    NoSelector,
    /// `--limit` is neither a number nor a percentage.
    #[error("--limit must be a number of devices (e.g. 10) or a percentage (e.g. 10%), not {0:?}")]
    BadLimit(String),
    /// `--uuids @FILE` could not be read.
    #[error("cannot read the device UUIDs from {path}: {reason}")]
    UuidFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A UUID is longer than the API accepts.
    #[error("device UUID {0:?} is too long: at most 60 characters")]
    LongUuid(String),
    /// Too many UUIDs.
    #[error("{0} device UUIDs given: at most 10000 per rollout")]
    TooManyUuids(usize),
}

/// Turns the rollout arguments into the request body, like fioctl reads them.
pub fn rollout_options(args: &WavesRolloutArgs) -> Result<RolloutOptions, RolloutError> {
    let group = args
        .group
        .clone()
        .or_else(|| args.group_arg.clone())
        .filter(|g| !g.is_empty());
    let (mut limit, mut percentage) = (None, None);
    if let Some(l) = args.limit.as_deref().filter(|l| !l.is_empty()) {
        let bad = || RolloutError::BadLimit(l.to_string());
        match l.strip_suffix('%') {
            Some(p) => {
                percentage = Some(
                    p.parse::<u32>()
                        .ok()
                        .filter(|p| (1..=100).contains(p))
                        .ok_or_else(bad)?,
                )
            }
            None => limit = Some(l.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(bad)?),
        }
    }
    let uuids = match args.uuids.as_deref().filter(|u| !u.is_empty()) {
        None => Vec::new(),
        Some(list) => {
            let text = match list.strip_prefix('@') {
                Some(path) => {
                    std::fs::read_to_string(path).map_err(|e| RolloutError::UuidFile {
                        path: path.to_string(),
                        reason: e.to_string(),
                    })?
                }
                None => list.to_string(),
            };
            let uuids: Vec<String> = text
                .split(|c: char| c == ',' || c == ';' || c == '|' || c.is_whitespace())
                .filter(|u| !u.is_empty())
                .map(str::to_string)
                .collect();
            if let Some(long) = uuids.iter().find(|u| u.chars().count() > 60) {
                return Err(RolloutError::LongUuid(long.chars().take(100).collect()));
            }
            if uuids.len() > MAX_ROLLOUT_DEVICES {
                return Err(RolloutError::TooManyUuids(uuids.len()));
            }
            uuids
        }
    };
    if group.is_none() && limit.is_none() && percentage.is_none() && uuids.is_empty() {
        return Err(RolloutError::NoSelector);
    }
    Ok(RolloutOptions {
        group,
        limit,
        percentage,
        uuids,
        dry_run: args.dry_run,
        return_uuids: args.print_uuids,
        return_names: args.print_names,
    })
}

/// `courier waves rollout`.
pub fn rollout(ctx: &Ctx, args: &WavesRolloutArgs) -> Result<()> {
    let opts = rollout_options(args).map_err(|e| match e {
        // A file that cannot be read is a file error, the rest are bad arguments.
        RolloutError::UuidFile { .. } => CourierError::Other(e.to_string()),
        e => CourierError::Usage(e.to_string()),
    })?;
    let res = ctx.client()?.rollout_wave(&args.name, &opts).map_err(|e| {
        CourierError::from(e).context(format!("Failed to roll out wave {}", args.name))
    })?;
    let full_group = opts.uuids.is_empty() && opts.limit.is_none() && opts.percentage.is_none();
    let (verb, also) = if opts.dry_run {
        ("would be rolled out", "would also be rolled out")
    } else {
        ("is being rolled out", "will also be rolled out")
    };
    let devices = match res.device_num {
        1 => "1 device".to_string(),
        n => format!("{n} devices"),
    };
    match &opts.group {
        None => ctx.out.line(&format!(
            "Wave {} {verb} to {devices} in your Factory.",
            args.name
        )),
        Some(g) => {
            ctx.out.line(&format!(
                "Wave {} {verb} to {devices} in group \"{}\".",
                args.name,
                one_line(g)
            ));
            if full_group {
                ctx.out.line(&format!(
                    "It {also} to all new devices in group \"{}\".",
                    one_line(g)
                ));
            }
        }
    }
    if opts.return_uuids || opts.return_names {
        let uuids = res.device_uuids.unwrap_or_default();
        let names = res.device_names.unwrap_or_default();
        if (opts.return_uuids && uuids.is_empty()) || (opts.return_names && names.is_empty()) {
            if res.device_num > 0 {
                ctx.out
                    .line("The list of these devices is too long to print (more than 10000).");
            }
        } else {
            ctx.out.line("The devices:");
            let n = if opts.return_uuids {
                uuids.len()
            } else {
                names.len()
            };
            for i in 0..n {
                let line = match (opts.return_uuids, opts.return_names) {
                    (true, true) => format!(
                        "  {} ({})",
                        one_line(&uuids[i]),
                        one_line(names.get(i).map(String::as_str).unwrap_or("-"))
                    ),
                    (true, false) => format!("  {}", one_line(&uuids[i])),
                    _ => format!("  {}", one_line(&names[i])),
                };
                ctx.out.line(&line);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(group: Option<&str>, limit: Option<&str>, uuids: Option<&str>) -> WavesRolloutArgs {
        WavesRolloutArgs {
            name: "w".into(),
            group_arg: None,
            group: group.map(str::to_string),
            limit: limit.map(str::to_string),
            uuids: uuids.map(str::to_string),
            dry_run: false,
            print_uuids: false,
            print_names: false,
        }
    }

    #[test]
    fn rollout_arguments_are_read_like_fioctl() {
        let o = rollout_options(&args(Some("east"), Some("10%"), None)).unwrap();
        assert_eq!(
            (o.group.as_deref(), o.percentage, o.limit),
            (Some("east"), Some(10), None)
        );
        let o = rollout_options(&args(None, Some("7"), Some("a, b;c|d"))).unwrap();
        assert_eq!(o.limit, Some(7));
        assert_eq!(o.uuids, vec!["a", "b", "c", "d"]);
        assert_eq!(
            rollout_options(&args(None, None, None)),
            Err(RolloutError::NoSelector)
        );
        for bad in ["0", "101%", "ten", "-3"] {
            assert_eq!(
                rollout_options(&args(Some("g"), Some(bad), None)),
                Err(RolloutError::BadLimit(bad.into()))
            );
        }
        assert!(matches!(
            rollout_options(&args(None, None, Some("@/nonexistent/uuids.txt"))),
            Err(RolloutError::UuidFile { .. })
        ));
        let long = "x".repeat(61);
        assert!(matches!(
            rollout_options(&args(None, None, Some(&long))),
            Err(RolloutError::LongUuid(_))
        ));
    }
}
