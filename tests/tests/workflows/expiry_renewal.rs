//! Every piece of expiry advice the tools print, followed through the binaries: after doing
//! what `courier expiry` and `signer inspect` advise, the document's expiry has moved. The
//! advice strings are `shared::expiry`'s (`RENEW_ROOT`, `renew_production_targets`,
//! `renew_wave`), so what is tested here is what users read.

use shared::expiry::{renew_production_targets, renew_wave, RENEW_ROOT};
use shared::metadata::Timestamp;
use tests::harness::{path_str, History, World, WorldOptions};

/// A factory that went offline 350 days ago: its root, production targets and wave expire in
/// about 15 days (within the 60-day warning, outside the 14-day critical horizon).
fn aging_factory(tags: usize, waves: usize) -> World {
    World::new(WorldOptions {
        history: History::Offline,
        created: Some(Timestamp::now().plus_days(-350)),
        tags,
        waves,
        targets: 4,
        ..WorldOptions::default()
    })
}

fn days_left(t: &Timestamp) -> i64 {
    Timestamp::now().days_until(t)
}

#[test]
fn an_expiring_root_is_renewed_by_the_root_key_rotation_the_tools_advise() {
    let w = aging_factory(0, 0);
    let root = w.view().ci_root().unwrap();
    assert!((14..=16).contains(&days_left(&root.signed.expires)));

    // The online radar and the offline inspection give the same advice.
    w.courier(["expiry"])
        .ok()
        .says("CI root v3")
        .says(&format!("warning — {RENEW_ROOT}"));
    let keys = w.offline.path("root.keys.tgz");
    w.pin_trust(&w.offline, &[]);
    let req = w.usb("renew.req.tufbundle");
    let resp = w.usb("renew.resp.tufbundle");
    // Followed: `courier rotate-offline-key --role root`, then `signer rotate-offline-key
    // --role root`.
    w.request_rotation("root", &req);
    w.signer(&w.offline, ["inspect", path_str(&req)])
        .ok()
        .says("current CI root v3")
        .says(RENEW_ROOT)
        .says("staged CI root v4");
    w.rotate_root_with(&w.offline, &keys, &req, &resp);
    w.push_apply(&resp);

    // The expiry moved by a year, on both roots, and the radar is quiet about them.
    let view = w.view();
    for root in [view.ci_root().unwrap(), view.prod_root().unwrap().unwrap()] {
        assert_eq!(root.signed.version, 4);
        assert!(
            days_left(&root.signed.expires) >= 364,
            "{}",
            root.signed.expires
        );
    }
    let radar = w.courier(["expiry"]).ok().stdout;
    for line in radar.lines().filter(|l| l.contains(" root v4")) {
        assert!(line.ends_with("  ok"), "{line}");
    }
}

#[test]
fn expiring_production_targets_and_waves_are_renewed_by_the_waves_the_tools_advise() {
    // Tag production at v3 and an active wave production-v4, all ~15 days from expiry.
    let w = aging_factory(1, 1);
    let view = w.view();
    let tag = view.prod_targets("production").unwrap().unwrap();
    let wave = w.init.waves[0].clone();
    assert!((14..=16).contains(&days_left(&tag.signed.expires)));
    let radar = w.courier(["expiry"]).ok();
    radar
        .says(&renew_production_targets("production", tag.signed.version))
        .says(&renew_wave(&wave));

    // The same advice offline, in `signer inspect` of a bundle that carries them.
    w.pin_trust(&w.offline, &[]);
    w.courier(["updates", "init", "-m", "look at the targets"])
        .ok();
    let look = w.usb("look.req.tufbundle");
    w.courier([
        "prod-targets",
        "pull",
        "--tags",
        "production",
        "--waves",
        &wave,
        "--bundle",
        path_str(&look),
    ])
    .ok();
    w.signer(&w.offline, ["inspect", path_str(&look)])
        .says(&renew_production_targets("production", tag.signed.version))
        .says(&renew_wave(&wave));
    w.courier(["updates", "cancel"]).ok();

    // Followed for the wave: cancelled, and the same build released in a new wave.
    w.courier(["waves", "cancel", &wave]).ok();
    let targets_keys = w.offline.path("targets.keys.tgz");
    let req = w.usb("renewed.req.tufbundle");
    let resp = w.usb("renewed.resp.tufbundle");
    w.courier([
        "waves",
        "init",
        "production-v4-renewed",
        "4",
        "production",
        "-e",
        "365",
        "--bundle",
        path_str(&req),
    ])
    .ok();
    w.signer(
        &w.offline,
        [
            "--yes",
            "sign-wave",
            "production-v4-renewed",
            "--targets-keys",
            path_str(&targets_keys),
            path_str(&req),
            "-o",
            path_str(&resp),
        ],
    )
    .ok();
    w.courier(["waves", "push", path_str(&resp)]).ok();
    let renewed = w
        .view()
        .wave_targets("production-v4-renewed")
        .unwrap()
        .unwrap();
    assert!(days_left(&renewed.signed.expires) >= 364);

    // Followed for the tag: the wave of a newer build (v4 > v3) completed.
    w.complete_wave("production-v4-renewed");
    let tag = w.view().prod_targets("production").unwrap().unwrap();
    assert_eq!(tag.signed.version, 4);
    assert!(
        days_left(&tag.signed.expires) >= 364,
        "{}",
        tag.signed.expires
    );
    let radar = w.courier(["expiry"]).ok().stdout;
    let line = radar
        .lines()
        .find(|l| l.contains("production targets production v4"))
        .unwrap_or_else(|| panic!("{radar}"));
    assert!(line.ends_with("  ok"), "{line}");
    w.device_check();
}
