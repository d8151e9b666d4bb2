//! `demo`: the whole offline-keys story of the Foundries documentation, run for real.
//!
//! In a fresh directory it creates a factory with `factory-sim`, starts the simulator on
//! 127.0.0.1, and plays an online machine (the courier), two air-gapped laptops (the root key
//! holder and the targets key holder) and a USB stick between them. Every command is printed
//! as a user would type it, with its output; at the end it verifies the served metadata the
//! way a device does and tells where every file is.
//!
//! `cargo run --release --bin demo [-- --dir DIR]`

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use tests::harness::{Run, World, WorldOptions};

fn step(title: &str) {
    println!("\n══ {title} ══");
}

fn note(text: &str) {
    for line in text.lines() {
        println!("   # {line}");
    }
}

fn check(run: Run) -> Result<Run> {
    if run.code != 0 {
        bail!(
            "`{}` failed with exit status {}:\n{}{}",
            run.command_line,
            run.code,
            run.stdout,
            run.stderr
        );
    }
    Ok(run)
}

fn signing_identity(run: Run) -> Result<String> {
    let id = run.stdout.trim().to_string();
    if !id.starts_with("ed25519:") {
        bail!("`signer identity show --signing` printed no signing identity: {id}");
    }
    Ok(id)
}

fn recipient(run: &Run) -> Result<String> {
    run.stdout
        .split_whitespace()
        .find(|w| w.starts_with("age1"))
        .map(|s| {
            s.trim_matches(|c: char| !c.is_ascii_alphanumeric())
                .to_string()
        })
        .context("`signer identity init` printed no age recipient")
}

/// Under `cargo run`, rebuilds `courier` and `signer` first so the demo never runs stale
/// binaries left in the target directory (a no-op when they are up to date).
fn refresh_binaries() -> Result<()> {
    let Ok(cargo) = std::env::var("CARGO") else {
        return Ok(());
    };
    let exe = std::env::current_exe()?;
    let release = exe.parent().is_some_and(|d| d.ends_with("release"));
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", "courier", "-p", "signer"]);
    if release {
        cmd.arg("--release");
    }
    println!(
        "building courier and signer (cargo build{})…",
        if release { " --release" } else { "" }
    );
    let status = cmd
        .status()
        .context("running cargo build for courier and signer")?;
    if !status.success() {
        bail!("cargo build of courier and signer failed");
    }
    Ok(())
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut dir: Option<PathBuf> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--dir" => {
                dir = Some(PathBuf::from(
                    args.next().context("--dir needs a directory")?,
                ))
            }
            "-h" | "--help" => {
                println!("usage: demo [--dir DIR]   (default: a new directory under the system temp dir)");
                return Ok(());
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    let dir = match dir {
        Some(d) => {
            if d.exists() && std::fs::read_dir(&d)?.next().is_some() {
                bail!(
                    "{} is not empty: give a new or empty directory",
                    d.display()
                );
            }
            std::fs::create_dir_all(&d)?;
            d
        }
        None => tempfile::Builder::new()
            .prefix("offline-tuf-demo-")
            .tempdir()?
            .keep(),
    };
    refresh_binaries()?;
    let started = Instant::now();
    println!(
        "offline TUF keys demo — everything happens in {}",
        dir.display()
    );
    let world = World::in_dir(
        &dir,
        WorldOptions {
            factory: "acme".into(),
            targets: 6,
            echo: true,
            ..WorldOptions::default()
        },
    );
    println!(
        "factory-sim serves factory {:?} at {}: a new factory, {} CI builds, no production tag yet",
        world.factory,
        world.url(),
        world.init.builds
    );
    let (online, root_holder, targets_holder) = (&world.online, &world.offline, &world.offline2);
    let root_keys = root_holder.path("root.keys.tgz");
    let targets_keys = targets_holder.path("targets.keys.tgz");

    step("1. Once, offline: an identity to receive the factory's initial root key");
    let id = check(world.signer(root_holder, ["identity", "init"]))?;
    let recipient = recipient(&id)?;
    note("The recipient travels to the online machine (typed, or as a text file on the stick).");
    check(world.courier(["config", "set-recipient", &recipient]))?;

    step("2. Pin trust on the offline laptop");
    let root_json = world.usb("root.json");
    let shown = check(world.courier(["show-root"]))?;
    std::fs::write(&root_json, &shown.stdout)?;
    note("courier show-root > /usb-stick/root.json   (written to the stick)");
    check(world.courier(["show-root", "--fingerprint"]))?;
    check(world.signer(
        root_holder,
        [
            "--yes".as_ref(),
            "trust".as_ref(),
            "init".as_ref(),
            root_json.as_os_str(),
        ],
    ))?;

    step("3. First-time root key rotation: take the initial online root key offline");
    let req1 = world.usb("first-time.tufbundle");
    let resp1 = world.usb("first-time.response.tufbundle");
    check(world.courier([
        "rotate-offline-key".as_ref(),
        "--role".as_ref(),
        "root".as_ref(),
        "--first-time".as_ref(),
        "--bundle".as_ref(),
        req1.as_os_str(),
    ]))?;
    check(world.signer(root_holder, ["inspect".as_ref(), req1.as_os_str()]))?;
    check(world.signer(
        root_holder,
        [
            "--yes".as_ref(),
            "rotate-offline-key".as_ref(),
            "--role".as_ref(),
            "root".as_ref(),
            "--first-time".as_ref(),
            "--keys".as_ref(),
            root_keys.as_os_str(),
            req1.as_os_str(),
            "-o".as_ref(),
            resp1.as_os_str(),
        ],
    ))?;
    check(world.courier([
        "updates".as_ref(),
        "push".as_ref(),
        resp1.as_os_str(),
        "--apply".as_ref(),
    ]))?;
    check(world.signer(
        root_holder,
        [
            "keys".as_ref(),
            "list".as_ref(),
            "--keys".as_ref(),
            root_keys.as_os_str(),
        ],
    ))?;

    step("4. Targets key rotation: the targets key lives on a second laptop");
    note("The targets key holder creates the key; the root key holder then signs the new root.\nThe courier uploads once.");
    note("First, once: the two key holders pin each other's signing identity, so that each\nbelieves the other's steps only when they really come from that laptop (fingerprints\ncompared in person or by phone, never over the USB stick). The courier pins them too.");
    let root_id = signing_identity(check(
        world.signer(root_holder, ["identity", "show", "--signing"]),
    )?)?;
    check(world.signer(targets_holder, ["identity", "init"]))?;
    let targets_id = signing_identity(check(
        world.signer(targets_holder, ["identity", "show", "--signing"]),
    )?)?;
    check(world.signer(
        root_holder,
        ["--yes", "cosigner", "add", "targets-holder", &targets_id],
    ))?;
    check(world.signer(
        targets_holder,
        ["--yes", "cosigner", "add", "root-holder", &root_id],
    ))?;
    check(world.courier(["config", "add-signer", "root-holder", &root_id]))?;
    check(world.courier(["config", "add-signer", "targets-holder", &targets_id]))?;
    let req2 = world.usb("targets.tufbundle");
    let half = world.usb("targets.step1.tufbundle");
    let resp2 = world.usb("targets.response.tufbundle");
    check(world.courier([
        "rotate-offline-key".as_ref(),
        "--role".as_ref(),
        "targets".as_ref(),
        "--bundle".as_ref(),
        req2.as_os_str(),
    ]))?;
    // The targets holder trusts the same root (pinned from the stick).
    check(world.signer(
        targets_holder,
        [
            "--yes".as_ref(),
            "trust".as_ref(),
            "init".as_ref(),
            root_json.as_os_str(),
        ],
    ))?;
    check(world.signer(
        targets_holder,
        [
            "--yes".as_ref(),
            "rotate-offline-key".as_ref(),
            "--role".as_ref(),
            "targets".as_ref(),
            "--targets-keys".as_ref(),
            targets_keys.as_os_str(),
            req2.as_os_str(),
            "-o".as_ref(),
            half.as_os_str(),
        ],
    ))?;
    check(world.signer(root_holder, ["inspect".as_ref(), half.as_os_str()]))?;
    check(world.signer(
        root_holder,
        [
            "--yes".as_ref(),
            "sign".as_ref(),
            "--keys".as_ref(),
            root_keys.as_os_str(),
            half.as_os_str(),
            "-o".as_ref(),
            resp2.as_os_str(),
        ],
    ))?;
    check(world.courier([
        "updates".as_ref(),
        "push".as_ref(),
        resp2.as_os_str(),
        "--apply".as_ref(),
    ]))?;
    check(world.courier(["show-root", "--prod"]))?;

    step("5. A wave: the first production targets, signed offline, then rolled out to all");
    note("Production targets come from waves, which need the offline targets key: this wave\ncreates the production tag.");
    let version = world.init.builds.to_string();
    let tag = "production".to_string();
    let wreq = world.usb("wave.tufbundle");
    let wresp = world.usb("wave.response.tufbundle");
    check(world.courier([
        "waves".as_ref(),
        "init".as_ref(),
        "wave-1".as_ref(),
        version.as_ref(),
        tag.as_ref(),
        "--bundle".as_ref(),
        wreq.as_os_str(),
    ]))?;
    check(world.signer(
        targets_holder,
        [
            "--yes".as_ref(),
            "sign-wave".as_ref(),
            "wave-1".as_ref(),
            "--targets-keys".as_ref(),
            targets_keys.as_os_str(),
            wreq.as_os_str(),
            "-o".as_ref(),
            wresp.as_os_str(),
        ],
    ))?;
    check(world.courier(["waves".as_ref(), "push".as_ref(), wresp.as_os_str()]))?;
    check(world.courier(["waves", "complete", "wave-1"]))?;

    step("6. Back up the root key: a verified copy and a paper sheet");
    let backup_dir = dir.join("backup-media");
    let sheet = dir.join("backup-media-paper").join("root-key-sheet.txt");
    std::fs::create_dir_all(sheet.parent().context("sheet dir")?)?;
    std::fs::create_dir_all(&backup_dir)?;
    note("mkdir backup-media backup-media-paper   (the backup media, mounted)");
    check(world.signer(
        root_holder,
        [
            "keys".as_ref(),
            "backup".as_ref(),
            "--keys".as_ref(),
            root_keys.as_os_str(),
            "--to".as_ref(),
            backup_dir.as_os_str(),
        ],
    ))?;
    check(world.signer(
        root_holder,
        [
            "keys".as_ref(),
            "print".as_ref(),
            "--keys".as_ref(),
            root_keys.as_os_str(),
            "--out".as_ref(),
            sheet.as_os_str(),
        ],
    ))?;

    step("7. What a device sees");
    let report = world.device_check();
    println!(
        "   CI root chain 1..{} and production root chain 1..{} verify from version 1;\n   verified targets: {}",
        report.ci_version,
        report.prod_version,
        report.targets_checked.join(", ")
    );

    step("Where everything is");
    let show = |label: &str, p: PathBuf| println!("   {label:<34} {}", p.display());
    show("factory-sim state", dir.join("factory-sim-state"));
    show("USB stick (bundles)", world.usb.clone());
    show("root keys (root key holder)", root_keys.clone());
    show("targets keys (targets key holder)", targets_keys.clone());
    show("root holder's signer state", root_holder.signer_home());
    show(
        "targets holder's signer state",
        targets_holder.signer_home(),
    );
    show("courier config and state", online.home.clone());
    show("backup copy", backup_dir);
    show("paper backup sheet", sheet);
    println!(
        "\n{} commands ran in {:.1} s; the simulator stops now, the files stay.",
        world.transcript().len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
