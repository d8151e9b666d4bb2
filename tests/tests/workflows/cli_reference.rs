//! The command-line reference of both programs, snapshot-tested: the `--help` of every
//! command and subcommand (`tests/snapshots/help-courier.md`, `help-signer.md`), and what
//! every command says when it is run with nothing set up and no arguments — the errors a
//! person meets before anything touches the network or a key (`tests/snapshots/
//! first-run-courier.md`, `first-run-signer.md`). A changed help text or message is a
//! reviewed change (`SNAPSHOTS=overwrite`, then `git diff`).

use tests::harness::{Run, World, WorldOptions};

/// The subcommand names listed under `Commands:` in a help text (`help` left out).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// Every command path of a program, depth first (`[]`, `["keys"]`, `["keys", "list"]`, …),
/// with whether it is a leaf (no subcommands).
fn command_paths(run: &dyn Fn(&[&str]) -> Run) -> Vec<(Vec<String>, bool)> {
    let mut out = Vec::new();
    let mut todo = vec![Vec::<String>::new()];
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let help = run(&args).ok().stdout;
        let subs = subcommands(&help);
        for sub in subs.iter().rev() {
            let mut p = path.clone();
            p.push(sub.clone());
            todo.push(p);
        }
        out.push((path, subs.is_empty()));
    }
    out
}

/// The help text of every command, and what every leaf command says run bare.
fn reference(
    w: &World,
    program: &str,
    run: &dyn Fn(&[&str]) -> Run,
    skip_bare: &[&str],
) -> (String, String) {
    let (mut helps, mut bare) = (String::new(), String::new());
    for (path, leaf) in command_paths(run) {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        let name = std::iter::once(program)
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");
        args.push("--help");
        helps.push_str(&format!("## {name}\n\n{}\n", run(&args).stdout.trim_end()));
        args.pop();
        if leaf && !skip_bare.contains(&path.join(" ").as_str()) {
            let r = run(&args);
            assert!(
                !r.stderr.contains("127.0.0.1:9"),
                "{name} reached the network with nothing set up: {}",
                r.stderr
            );
            assert_ne!(r.code, 101, "{name} panicked: {}", r.stderr);
            bare.push_str(&format!(
                "## {name}\n? {}\n{}{}\n",
                r.code,
                r.stdout.trim_end(),
                r.stderr.trim_end()
            ));
        }
    }
    let _ = w;
    (helps, bare)
}

#[test]
fn every_help_text_and_every_first_run_message() {
    let w = World::new(WorldOptions::default());
    // Commands that would do their job run bare (print a page, create an identity) are
    // covered elsewhere; every other leaf is run with nothing set up.
    let (helps, bare) = reference(
        &w,
        "courier",
        &|a: &[&str]| w.courier_unconfigured(a),
        &["man"],
    );
    w.snapshot_text("help-courier", &helps);
    w.snapshot_text("first-run-courier", &bare);
    let (helps, bare) = reference(
        &w,
        "signer",
        &|a: &[&str]| w.signer(&w.offline, a),
        &["man", "identity init"],
    );
    w.snapshot_text("help-signer", &helps);
    w.snapshot_text("first-run-signer", &bare);
}
