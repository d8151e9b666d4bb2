//! Ceremony aids (issue 12) through the real binaries against the simulator: the expiry
//! radar (`courier expiry`: horizons, an expired role, exit status 6 for cron, the `--ics`
//! calendar; the expiry section of `signer inspect`) and the missing-signature checklist of
//! `courier updates status`; the Shamir split backups (`signer keys split` / `combine`: any
//! K of N, too few shares, a corrupted line, mixed splits, another factory).

use std::os::unix::fs::PermissionsExt;

use shared::metadata::{Role, Timestamp};
use tests::harness::{path_str, tarball_keyids, History, Run, World, WorldOptions};

/// A new factory (root v1, the initial key online; no tags yet).
fn world(opts: WorldOptions) -> World {
    World::new(opts)
}

/// A factory that went offline (root v3) with two production tags and an active wave.
fn offline_world() -> World {
    World::new(WorldOptions {
        tags: 2,
        waves: 1,
        targets: 3,
        prod_behind: 1,
        history: History::Offline,
        ..WorldOptions::default()
    })
}

#[test]
fn expiry_radar_horizons_critical_exit_and_calendar() {
    let w = offline_world();
    // Everything about a year away; nothing to warn about.
    let out = w.courier(["expiry"]).ok().stdout;
    assert!(out.contains("Expiry radar for acme"), "{out}");
    for doc in ["CI root v3", "production targets ", "wave "] {
        assert!(out.contains(doc), "{doc}: {out}");
    }
    assert!(
        out.contains("364 days left)  ok") || out.contains("365 days left)  ok"),
        "{out}"
    );
    assert!(
        !out.contains("warning") && !out.contains("CRITICAL"),
        "{out}"
    );

    // A wider warning horizon: warnings, still exit 0.
    w.courier(["expiry", "--warn", "400d", "--critical", "2w"])
        .ok()
        .says("warning — rotate the root key (`courier rotate-offline-key --role root`");

    // Within the critical horizon but not yet expired: exit 6, naming the documents.
    let soon = Timestamp::now().plus_days(360).to_string();
    let run = w.courier(["expiry", "--now", &soon]).fails();
    assert_eq!(run.code, 6, "{}", run.stderr);
    run.says("CRITICAL")
        .says("expired or expiring within 14 days: CI root v3");

    // Bad horizons are usage errors (exit 2) naming the value.
    let run = w.courier(["expiry", "--warn", "soon"]).fails();
    assert_eq!(run.code, 2);
    run.says("`soon` is not a number of days");
    let run = w
        .courier(["expiry", "--warn", "7d", "--critical", "30d"])
        .fails();
    assert_eq!(run.code, 2);
    run.says("must not be longer");

    // The calendar: one event with an alarm per document, RFC 5545 line endings and folding.
    let ics = w.online.path("ceremonies.ics");
    let json = w
        .courier(["expiry", "--json", "--ics", path_str(&ics)])
        .ok()
        .stdout;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 1 + 1 + 2 + 1, "{json}"); // CI and production roots, 2 tags, 1 wave
    let cal = std::fs::read_to_string(&ics).unwrap();
    assert!(cal.starts_with("BEGIN:VCALENDAR\r\n"), "{cal}");
    assert!(cal.ends_with("END:VCALENDAR\r\n"), "{cal}");
    assert_eq!(cal.matches("BEGIN:VEVENT\r\n").count(), items.len());
    assert_eq!(cal.matches("BEGIN:VALARM\r\n").count(), items.len());
    for field in [
        "UID:",
        "DTSTAMP:",
        "DTSTART;VALUE=DATE:",
        "SUMMARY:TUF ceremony for acme",
    ] {
        assert!(cal.contains(&format!("\r\n{field}")), "{field}: {cal}");
    }
    assert!(!cal.replace("\r\n", "").contains('\n'), "bare LF");
    assert!(cal.split("\r\n").all(|l| l.len() <= 75));
    // Written atomically: no temporary file left next to it.
    let names: Vec<String> = std::fs::read_dir(w.online.path(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("ceremonies"))
        .collect();
    assert_eq!(names, ["ceremonies.ics"]);
}

#[test]
fn expired_root_is_reported_by_courier_and_signer_inspect() {
    // A factory created 400 days ago whose root v1 expired 35 days ago.
    let w = world(WorldOptions {
        created: Some(Timestamp::now().plus_days(-400)),
        ..WorldOptions::default()
    });
    let run = w.courier(["expiry"]).fails();
    assert_eq!(run.code, 6, "{}", run.stderr);
    run.says("EXPIRED")
        .says("(expired 35 days ago)")
        .says("expired or expiring within 14 days: CI root v1");
    // No calendar event for what has already expired; the rest still gets reminders.
    let ics = w.online.path("late.ics");
    w.courier(["expiry", "--ics", path_str(&ics)]).fails();
    let cal = std::fs::read_to_string(&ics).unwrap();
    assert!(!cal.contains("CI root v1"), "{cal}");

    // The offline side sees the same in `signer inspect` of a request bundle.
    w.connect_identity(&w.offline);
    let req = w.usb("renew.req.tufbundle");
    w.request_first_time_rotation(&req);
    w.pin_trust(&w.offline, &["--allow-expired"]);
    w.signer(&w.offline, ["inspect", path_str(&req), "--allow-expired"])
        .says("Expiry (warning within 60 days, critical within 14")
        .says("current CI root v1")
        .says("EXPIRED — rotate the root key");
}

#[test]
fn updates_status_lists_missing_signatures() {
    let w = world(WorldOptions::default());
    let keys = w.offline.path("root.keys.tgz");
    w.first_time_rotation(&w.offline, &keys);
    w.courier(["updates", "init", "-m", "resign"]).ok();
    w.courier(["updates", "status"])
        .ok()
        .says("Missing-signature checklist")
        .says("CI root: 0 of 1 root signatures, missing ");
}

/// `signer keys combine SHEET… --out OUT [extra]` on the offline machine.
fn combine(w: &World, sheets: &[&std::path::Path], out: &std::path::Path, extra: &[&str]) -> Run {
    let mut args = vec!["keys", "combine"];
    args.extend(sheets.iter().map(|p| path_str(p)));
    args.extend(["--out", path_str(out)]);
    args.extend(extra);
    w.signer(&w.offline, &args)
}

/// `signer keys split` of `keys` into `dir`: `threshold` of 3 shares for factory acme.
fn split_k(w: &World, keys: &std::path::Path, dir: &std::path::Path, threshold: &str) -> Run {
    w.signer(
        &w.offline,
        [
            "keys",
            "split",
            "--keys",
            path_str(keys),
            "--factory",
            "acme",
            "--shares",
            "3",
            "--threshold",
            threshold,
            "--out",
            path_str(dir),
        ],
    )
}

/// A 2-of-3 split of `keys` into `dir`, which must succeed.
fn split(w: &World, keys: &std::path::Path, dir: &std::path::Path) -> Run {
    split_k(w, keys, dir, "2").ok()
}

#[test]
fn shamir_split_combine_refusals_and_a_rotation_signed_with_the_restored_key() {
    let w = world(WorldOptions::default());
    let keys = w.offline.path("root.keys.tgz");
    let k1 = w.first_time_rotation(&w.offline, &keys);
    // The next request bundle shows the signer the applied v2: its pin advances, so the
    // `keys` commands take the new root key as the active one.
    let req = w.usb("after-restore.req.tufbundle");
    w.request_rotation("root", &req);
    w.signer(&w.offline, ["inspect", path_str(&req)])
        .ok()
        .says("The trusted root advanced from v1 to v2");
    let dir = w.offline.path("shares");
    split(&w, &keys, &dir)
        .says("any 2 restore it, fewer reveal nothing")
        .says(k1.as_str());
    let sheet = |d: &std::path::Path, x: usize| d.join(format!("acme-root-share-{x}-of-3.txt"));
    for x in 1..=3 {
        let text = std::fs::read_to_string(sheet(&dir, x)).unwrap();
        for needle in [
            "format:     offline-tuf key share v1".to_string(),
            "factory:    acme".to_string(),
            format!("keyid:      {k1}"),
            format!("share:      {x} of 3"),
            "threshold:  2".to_string(),
            " 001: ".to_string(),
            "QR code 1 of".to_string(),
        ] {
            assert!(text.contains(&needle), "{needle}: {text}");
        }
        let mode = std::fs::metadata(sheet(&dir, x))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "sheet readable by others: {mode:o}");
    }
    // Never over existing sheets.
    split_k(&w, &keys, &dir, "2").fails().says("already exists");
    // K and N are checked.
    split_k(&w, &keys, &w.offline.path("x"), "1")
        .fails()
        .says("need 2 ≤ threshold ≤ shares ≤ 255");

    // Any two of the three restore the key, in any order.
    for (a, b) in [(1, 2), (3, 1), (2, 3)] {
        let out = w.offline.path(&format!("restored-{a}{b}.keys.tgz"));
        combine(
            &w,
            &[&sheet(&dir, a), &sheet(&dir, b)],
            &out,
            &["--factory", "acme"],
        )
        .ok()
        .says("which has the sheets' keyid");
        assert_eq!(tarball_keyids(&out, Role::Root), vec![k1.clone()]);
    }

    // Too few: one sheet reveals nothing, nothing is written.
    let out = w.offline.path("never.keys.tgz");
    combine(&w, &[&sheet(&dir, 2)], &out, &[])
        .fails()
        .says("1 share(s) given (2) but this split needs 2 of 3")
        .says("fewer than the threshold reveal nothing");
    assert!(!out.exists());
    // The same share twice is not two shares.
    combine(&w, &[&sheet(&dir, 1), &sheet(&dir, 1)], &out, &[])
        .fails()
        .says("are both share 1");
    // A corrupted line: named by sheet and line number.
    let text = std::fs::read_to_string(sheet(&dir, 3)).unwrap();
    let line2 = text.lines().find(|l| l.starts_with(" 002: ")).unwrap();
    let digit = line2.chars().nth(6).unwrap();
    let other = if digit == '0' { '1' } else { '0' };
    let bad_line = format!(" 002: {other}{}", &line2[7..]);
    let bad = w.write_usb("share-3-typo.txt", text.replace(line2, &bad_line));
    combine(&w, &[&sheet(&dir, 1), &bad], &out, &[])
        .fails()
        .says("share-3-typo.txt: line 2: check code does not match");
    // Sheets of another split of the same key, and of another factory.
    let dir2 = w.offline.path("shares-2");
    split(&w, &keys, &dir2);
    combine(&w, &[&sheet(&dir, 1), &sheet(&dir2, 2)], &out, &[])
        .fails()
        .says("are not from the same split");
    combine(
        &w,
        &[&sheet(&dir, 1), &sheet(&dir, 2)],
        &out,
        &["--factory", "globex"],
    )
    .fails()
    .says("is a share of factory acme, not globex");
    let relabelled = w.write_usb(
        "globex-share-2.txt",
        std::fs::read_to_string(sheet(&dir, 2))
            .unwrap()
            .replace("factory:    acme", "factory:    globex"),
    );
    combine(&w, &[&sheet(&dir, 1), &relabelled], &out, &[])
        .fails()
        .says("sheets of different factories");
    assert!(!out.exists());

    // The restored key signs the next root rotation, which devices accept.
    let restored = w.offline.path("restored-31.keys.tgz");
    let resp = w.usb("after-restore.resp.tufbundle");
    w.rotate_root_with(&w.offline, &restored, &req, &resp);
    w.push_apply(&resp);
    let root = w.view().ci_root().unwrap();
    assert_ne!(root.signed.role_keyids(Role::Root), vec![k1]);
    w.device_check();
}

#[test]
fn restore_drill_of_every_backup_form_and_of_another_factorys_backup() {
    let w = world(WorldOptions::default());
    let keys = w.offline.path("root.keys.tgz");
    let k1 = w.first_time_rotation(&w.offline, &keys);
    // A request bundle carries the factory's current root (v2), verified from the pin (v1),
    // which advances to it.
    let req = w.usb("drill.req.tufbundle");
    w.request_rotation("root", &req);
    w.signer(&w.offline, ["inspect", path_str(&req)])
        .ok()
        .says("The trusted root advanced from v1 to v2");
    let against = ["--bundle", path_str(&req)];
    let drill = |backup: &[&str], against: &[&str]| {
        let mut args = vec!["keys", "drill"];
        args.extend(backup);
        args.extend(against);
        w.signer(&w.offline, &args)
    };

    // Backups in every form: tarball copy, exported key file, paper sheet, share sheets.
    let media = w.root.join("backup-media");
    let copy = w.backup_keys(&w.offline, &keys, &media);
    let key_file = w.offline.path("root-key.sec");
    w.signer(
        &w.offline,
        [
            "keys",
            "export-root",
            "--keys",
            path_str(&keys),
            "--out",
            path_str(&key_file),
            "--i-understand-this-exports-a-private-key",
        ],
    )
    .ok();
    let paper = w.offline.path("root-key-sheet.txt");
    w.signer(
        &w.offline,
        [
            "keys",
            "print",
            "--keys",
            path_str(&keys),
            "--out",
            path_str(&paper),
        ],
    )
    .ok();
    let shares = w.offline.path("shares");
    split(&w, &keys, &shares);
    let share = |x: usize| shares.join(format!("acme-root-share-{x}-of-3.txt"));
    let (s1, s3) = (share(1), share(3));

    let unchanged = w.watch(&[&keys, &copy, &key_file, &paper, &s1, &s3]);
    let before: Vec<usize> = [&media, &w.offline.home]
        .iter()
        .map(|d| std::fs::read_dir(d).unwrap().count())
        .collect();
    for backup in [
        vec!["--keys", path_str(&copy)],
        vec!["--key-file", path_str(&key_file)],
        vec!["--sheet", path_str(&paper)],
        vec!["--shares", path_str(&s1), path_str(&s3)],
    ] {
        drill(&backup, &against)
            .ok()
            .says("Drill passed")
            .says(&format!(
                "its key {k1} is a root key of acme's current root v2"
            ))
            .says("A throwaway draft root v3 signed with it verifies against the current root");
    }
    // Against the root pinned on this machine (v2 since the bundle was inspected), with and
    // without naming the factory.
    drill(&["--keys", path_str(&copy)], &["--factory", "acme"])
        .ok()
        .says("acme's current root v2");
    drill(&["--keys", path_str(&copy)], &[])
        .ok()
        .says("acme's current root v2 (from the root pinned in");
    // Each drill is on record.
    let log = w.signer(&w.offline, ["audit", "show"]).ok().stdout;
    assert_eq!(log.matches("backup drill passed").count(), 6, "{log}");
    // The backups were only read; nothing was left next to them; the server is untouched.
    unchanged.assert_unchanged();
    let after: Vec<usize> = [&media, &w.offline.home]
        .iter()
        .map(|d| std::fs::read_dir(d).unwrap().count())
        .collect();
    assert_eq!(before, after);

    // Too few shares, a corrupted sheet: the drill fails and says why.
    drill(&["--shares", path_str(&s1)], &against)
        .fails()
        .says("fewer than the threshold reveal nothing");
    let text = std::fs::read_to_string(&paper).unwrap();
    let line1 = text.lines().find(|l| l.starts_with(" 001: ")).unwrap();
    let flipped = if line1.as_bytes()[6] == b'0' {
        "1"
    } else {
        "0"
    };
    let bad = w.write_usb(
        "sheet-typo.txt",
        text.replace(line1, &format!(" 001: {flipped}{}", &line1[7..])),
    );
    drill(&["--sheet", path_str(&bad)], &against)
        .fails()
        .says("sheet-typo.txt: line 1: check code does not match");

    // A backup of another factory's root key: refused, naming the factory's root keys.
    let other = World::new(WorldOptions {
        factory: "globex".to_string(),
        ..WorldOptions::default()
    });
    let other_keys = other.offline.path("root.keys.tgz");
    let g1 = other.first_time_rotation(&other.offline, &other_keys);
    let foreign = w.write_usb("globex.keys.tgz", std::fs::read(&other_keys).unwrap());
    drill(&["--keys", path_str(&foreign)], &against)
        .fails()
        .says("DRILL FAILED")
        .says(&format!(
            "holds none of the root keys of acme's current root v2 ({})",
            k1.short()
        ))
        .says("not a backup of this factory's active root key");
    assert_ne!(g1, k1);
}
