//! Ceremony aids (issue 12) through the real binaries against the simulator: the expiry
//! radar (`courier expiry`: horizons, an expired role, exit status 6 for cron, the `--ics`
//! calendar; the expiry section of `signer inspect`) and the missing-signature checklist of
//! `courier updates status`.

use shared::metadata::Timestamp;
use tests::harness::{path_str, World, WorldOptions};

fn world(opts: WorldOptions) -> World {
    World::new(WorldOptions {
        tags: 2,
        waves: 1,
        targets: 3,
        prod_behind: 1,
        ..opts
    })
}

#[test]
fn expiry_radar_horizons_critical_exit_and_calendar() {
    let w = world(WorldOptions::default());
    // A fresh factory: everything about a year away; nothing to warn about.
    let out = w.courier(["expiry"]).ok().stdout;
    assert!(out.contains("Expiry radar for acme"), "{out}");
    for doc in ["CI root v1", "production targets ", "wave "] {
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
        .says("warning — renew with a root ceremony");

    // Within the critical horizon but not yet expired: exit 6, naming the documents.
    let soon = Timestamp::now().plus_days(360).to_string();
    let run = w.courier(["expiry", "--now", &soon]).fails();
    assert_eq!(run.code, 6, "{}", run.stderr);
    run.says("CRITICAL")
        .says("expired or expiring within 14 days: CI root v1");

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
    assert_eq!(items.len(), 1 + 2 + 1, "{json}"); // CI root, 2 tags, 1 wave
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
    w.courier([
        "rotate-offline-key",
        "--role",
        "root",
        "--first-time",
        "--bundle",
        path_str(&req),
    ])
    .ok();
    w.pin_trust(&w.offline, &["--allow-expired"]);
    w.signer(&w.offline, ["inspect", path_str(&req), "--allow-expired"])
        .says("Expiry (warning within 60 days, critical within 14")
        .says("current CI root v1")
        .says("EXPIRED — root ceremony");
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
