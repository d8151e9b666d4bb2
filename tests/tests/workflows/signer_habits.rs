//! fioctl habits on the offline side, through the `signer` binary: fioctl's flags that
//! belong to the online half are answered with what to do instead (exit 2), fioctl's
//! spellings that do not clash are accepted, and both programs ship completions and man
//! pages. The messages are snapshot-tested (`tests/snapshots/signer-fioctl-habits.txt`).

use tests::harness::{World, WorldOptions};

#[test]
fn fioctl_flags_given_to_the_signer_say_which_program_takes_them() {
    let w = World::new(WorldOptions::default());
    let bundle = w.usb("req.tufbundle");
    let b = bundle.to_str().unwrap();
    let keys = w.offline.path("root.keys.tgz");
    let k = keys.to_str().unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "rotate-offline-key",
            "--role",
            "root",
            "--keys",
            k,
            "--txid",
            "abc",
            b,
            "-o",
            "r",
        ],
        vec![
            "rotate-offline-key",
            "--role",
            "root",
            "-k",
            k,
            "--sign",
            b,
            "-o",
            "r",
        ],
        vec![
            "rotate-offline-key",
            "--role",
            "root",
            "-k",
            k,
            "-m",
            "why",
            b,
            "-o",
            "r",
        ],
        vec!["sign", "--keys", k, "--factory", "acme", b, "-o", "r"],
        vec!["sign-prod-targets", "-K", k, "--waves", "w1", b, "-o", "r"],
        vec![
            "sign-wave",
            "w1",
            "-K",
            k,
            "--expires-days",
            "30",
            b,
            "-o",
            "r",
        ],
        vec!["-y", "sign", "--keys", k, b, "-o", "r"],
        vec!["inspect", "--bundle", b],
    ];
    let mut all = String::new();
    for args in cases {
        let run = w.signer(&w.offline, &args);
        assert_eq!(run.code, 2, "{}: {}", run.command_line, run.stderr);
        assert!(run.stdout.is_empty());
        all.push_str(&format!(
            "$ {}\n{}\n",
            run.command_line,
            run.stderr.trim_end()
        ));
    }
    w.snapshot_text("signer-fioctl-habits", &all);
    assert!(!w.usb("r").exists());
}

#[test]
fn both_programs_ship_completions_and_man_pages() {
    let w = World::new(WorldOptions::default());
    for program in ["signer", "courier"] {
        let run_on = |args: &[&str]| match program {
            "signer" => w.signer(&w.offline, args),
            _ => w.courier(args),
        };
        let script = run_on(&["completions", "bash"]).ok().stdout;
        assert!(script.contains("rotate-offline-key"), "{program}");
        let page = run_on(&["man"]).ok().stdout;
        assert!(page.contains(".TH"), "{program}");
        assert!(
            page.contains("Exit codes"),
            "{program}: the exit codes are documented"
        );
        let dir = w.root.join(format!("man-{program}"));
        run_on(&["man", "--dir", dir.to_str().unwrap()])
            .ok()
            .says("man pages to");
        assert!(dir.join(format!("{program}.1")).exists());
        assert!(dir.join(format!("{program}-rotate-offline-key.1")).exists());
    }
}
