//! End to end with the root key on a PKCS#11 token (SoftHSM2, a throwaway token): the
//! first-time rotation creates the root key on the token, then a targets rotation puts the
//! targets key in a tarball while the roots are signed on the token. The courier verifies
//! every token signature, the simulator validates and applies, and a device check walks the
//! served chain.

use shared::metadata::Role;
use tests::harness::{path_str, tarball_keyids, World, WorldOptions};

#[test]
#[cfg_attr(
    not(has_softhsm2),
    ignore = "SoftHSM2 not installed: apt-get install softhsm2, or set OFFLINE_TUF_SOFTHSM2_MODULE (README: Tests)"
)]
fn root_key_on_a_token_through_courier_and_simulator() {
    let hsm = tests::softhsm::SoftHsm::create();
    hsm.init_token("factory-root");
    let w = World::new(WorldOptions {
        env: vec![("SOFTHSM2_CONF".into(), path_str(&hsm.conf()).into())],
        ..WorldOptions::default()
    });

    // Workflow 1 into the token; `courier updates push --apply` accepts the signatures.
    let uri = hsm.uri_with_pin("factory-root", Some("root-2026"));
    let k1 = w.first_time_rotation(&w.offline, &uri);
    let report = w.device_check();
    assert_eq!((report.ci_version, report.prod_version), (2, 2));
    let root = w.view().ci_root().unwrap();
    assert_eq!(
        root.signed.role_keyids(Role::Root),
        std::slice::from_ref(&k1)
    );
    assert_eq!(root.signed.keys[&k1].keytype(), "ED25519");
    // No keys tarball anywhere: the key exists only on the token.
    assert!(!w.offline.path("root.keys.tgz").exists());

    // Targets rotation: the targets key in a tarball, the roots signed on the token.
    let req = w.usb("targets.req.tufbundle");
    let resp = w.usb("targets.resp.tufbundle");
    w.request_rotation("targets", &req);
    let tk = w.offline.path("targets.keys.tgz");
    let keys = hsm.uri_with_pin("factory-root", None);
    w.rotate_targets(&w.offline, &keys, &tk, &req, &resp)
        .says("token labelled");
    w.push_apply(&resp);
    let report = w.device_check();
    assert_eq!((report.ci_version, report.prod_version), (3, 3));
    let root = w.view().ci_root().unwrap();
    let offline_targets = tarball_keyids(&tk, Role::Targets);
    assert_eq!(offline_targets.len(), 1);
    assert!(root
        .signed
        .role_keyids(Role::Targets)
        .contains(&offline_targets[0]));
    assert!(root.signatures.iter().any(|s| s.keyid == k1));
}
