//! `bench`: end-to-end benchmarks of a large simulated factory, with baselines run side by
//! side in the same run (issue 9).
//!
//! ```text
//! cargo build --release -p courier -p signer -p factory-sim
//! cargo run --release --bin bench -- [--quick] [--scale F] [--reps N] [--out FILE] [--no-scaling]
//! ```
//!
//! A factory that went offline is generated with the real `factory-sim init --offline-keys`
//! (root v3; default scale: 200 production tags and 20 waves of about 1 MB targets JSON each,
//! signed by the online and the offline targets key, CI targets of about 50 MB) and served
//! with `factory-sim serve`; the offline laptop pins its root. Then each item is
//! repeated (min and median reported): `courier updates pull --op rotate-targets` vs `curl`
//! of the same URLs; `signer rotate-offline-key --role targets` vs `sha512sum`, `jq -cS` and a
//! Python canonicalize + ed25519 baseline over the same targets files; `courier updates push`
//! of the response; bundle read/write vs `tar -xf`/`tar -cf` of the same members; process
//! start-up; peak RSS of every child (`wait4`), at both factory sizes; and scaling with 4× the
//! data (≈ 850 MB of targets documents at the default scale: bundles have no total size
//! limit). The goals beside each row are issue 21's (bounded memory: 64 MB plus three times
//! the largest document, at every size). The table is
//! printed and written to `BENCHMARKS.md` at the repository root (`--quick`: in the work
//! directory, unless `--out` is given). Nothing here asserts a time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use shared::bundle::{self, TransferBundle};

/// Benchmarks of courier and signer on a large simulated factory.
#[derive(Parser, Debug, Clone)]
#[command(name = "bench", about)]
struct Args {
    /// Size factor (1 = 200 tags and 20 waves of ~1 MB each, ~50 MB CI targets).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Small enough for CI: a few seconds.
    #[arg(long)]
    quick: bool,
    /// Repetitions of each measurement (default: 3, --quick: 2).
    #[arg(long)]
    reps: Option<usize>,
    /// Where to write the report (default: BENCHMARKS.md at the repository root; with
    /// --quick: BENCHMARKS.md in the work directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Skip the scaling run.
    #[arg(long)]
    no_scaling: bool,
    /// Work directory (kept afterwards); default: a temporary directory, removed.
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Everything after this line of an existing report is kept when it is rewritten.
const NOTES_MARKER: &str = "<!-- notes: kept by the bench when it rewrites this file -->";

/// Factory shape for a scale.
#[derive(Clone, Debug)]
struct Shape {
    label: String,
    tags: usize,
    waves: usize,
    builds: u64,
    hardware_ids: usize,
    apps: usize,
    prod_window: u64,
}

impl Shape {
    fn new(scale: f64, quick: bool) -> Shape {
        // With 8 hardware ids × 8 apps a build is about 14 KB of targets JSON: 70 builds per
        // tag ≈ 1 MB, 3600 CI builds ≈ 50 MB.
        let (tags, waves, window, builds) = if quick {
            (4.0 * scale, 2.0 * scale, 5.0, 40.0 * scale)
        } else {
            (200.0 * scale, 20.0 * scale, 70.0, 3600.0 * scale)
        };
        let tags = (tags.round() as usize).max(2);
        let waves = (waves.round() as usize).clamp(1, tags);
        let prod_window = window as u64;
        Shape {
            label: format!("{}{}×", if quick { "quick " } else { "" }, trim(scale)),
            tags,
            waves,
            builds: (builds.round() as u64).max(prod_window + 2),
            hardware_ids: 8,
            apps: 8,
            prod_window,
        }
    }
}

fn trim(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Min and median of repeated measurements.
#[derive(Clone, Copy, Debug, Default)]
struct Stat {
    min: f64,
    median: f64,
}

impl Stat {
    fn of(samples: &[f64]) -> Option<Stat> {
        if samples.is_empty() {
            return None;
        }
        let mut v = samples.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        let median = if v.len() % 2 == 1 {
            v[v.len() / 2]
        } else {
            (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
        };
        Some(Stat { min: v[0], median })
    }
}

/// One finished child process.
struct Done {
    code: i32,
    secs: f64,
    max_rss_kb: i64,
}

fn bin_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().context("exe dir")?.to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    Ok(dir)
}

/// Runs `cmd` to completion (stdout/stderr to `log` files), timing it and reading its peak
/// RSS with `wait4`.
fn run(mut cmd: Command, log: &Path) -> Result<Done> {
    let out = std::fs::File::create(log.with_extension("out"))?;
    let err = std::fs::File::create(log.with_extension("err"))?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    let start = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot run {:?}", cmd.get_program()))?;
    let (code, rss) = wait4(&child)?;
    let secs = start.elapsed().as_secs_f64();
    Ok(Done {
        code,
        secs,
        max_rss_kb: rss,
    })
}

fn wait4(child: &Child) -> Result<(i32, i64)> {
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; wait4 fills it in for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; pid is a child of this process.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e.into());
        }
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Ok((code, usage.ru_maxrss))
}

/// The machines, binaries and server of one benchmark factory.
struct Env {
    work: PathBuf,
    bins: PathBuf,
    url: String,
    token: String,
    factory: String,
    online: PathBuf,
    offline: PathBuf,
    server: Child,
    server_log: PathBuf,
    seq: std::cell::Cell<usize>,
}

impl Drop for Env {
    fn drop(&mut self) {
        // SAFETY: plain signal to our own child.
        unsafe {
            libc::kill(self.server.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.server.wait();
    }
}

impl Env {
    fn log_path(&self, what: &str) -> PathBuf {
        let n = self.seq.get() + 1;
        self.seq.set(n);
        self.work.join("logs").join(format!("{n:03}-{what}"))
    }

    fn machine(&self, cmd: &mut Command, home: &Path) {
        cmd.current_dir(home)
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("NO_COLOR", "1")
            .env_remove("FIOCTL_CONFIG");
    }

    fn courier_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.bins.join("courier"));
        cmd.arg("--api-url")
            .arg(&self.url)
            .args(args)
            .env("FIOCTL_FACTORY", &self.factory)
            .env("FIOCTL_TOKEN", &self.token);
        self.machine(&mut cmd, &self.online);
        cmd
    }

    fn signer_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.bins.join("signer"));
        cmd.args(args)
            .env("SIGNER_HOME", self.offline.join("signer-state"));
        self.machine(&mut cmd, &self.offline);
        cmd
    }

    /// Runs and requires success; returns the timing and stdout.
    fn ok(&self, what: &str, cmd: Command) -> Result<(Done, String)> {
        let log = self.log_path(what);
        let done = run(cmd, &log)?;
        let stdout = std::fs::read_to_string(log.with_extension("out")).unwrap_or_default();
        if done.code != 0 {
            let stderr = std::fs::read_to_string(log.with_extension("err")).unwrap_or_default();
            bail!("{what} failed (exit {}):\n{stdout}\n{stderr}", done.code);
        }
        Ok((done, stdout))
    }

    fn courier(&self, what: &str, args: &[&str]) -> Result<(Done, String)> {
        self.ok(what, self.courier_cmd(args))
    }

    fn signer(&self, what: &str, args: &[&str]) -> Result<(Done, String)> {
        self.ok(what, self.signer_cmd(args))
    }

    fn server_log_len(&self) -> u64 {
        std::fs::metadata(&self.server_log)
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// GET paths the server logged after byte `from` of its log.
    fn gets_since(&self, from: u64) -> Result<Vec<String>> {
        let mut f = std::fs::File::open(&self.server_log)?;
        let mut all = String::new();
        f.read_to_string(&mut all)?;
        let tail = all.get(from as usize..).unwrap_or("");
        Ok(tail
            .lines()
            .filter_map(|l| l.strip_prefix("factory-sim: GET "))
            .filter_map(|l| l.split(" -> ").next())
            .map(str::to_string)
            .collect())
    }
}

fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// Runs a plain command (a baseline) and times it; `None` if the tool is missing.
fn baseline(cmd: &mut Command) -> Result<Option<f64>> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let secs = start.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "baseline {:?} failed: {}",
            cmd.get_program(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(Some(secs))
}

fn have(tool: &str, arg: &str) -> bool {
    Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

const PYTHON_BASELINE: &str = r#"
import json, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
key = Ed25519PrivateKey.generate()
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        doc = json.load(f)
    signed = json.dumps(doc["signed"], sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    key.sign(signed)
"#;

/// Everything measured on one factory.
#[derive(Default)]
struct Results {
    shape: Option<Shape>,
    init_secs: f64,
    ci_bytes: u64,
    docs: usize,
    docs_bytes: u64,
    largest_doc: u64,
    bundle_file: u64,
    bundle_tar: u64,
    urls: usize,
    pull: Vec<f64>,
    curl: Vec<f64>,
    rotate: Vec<f64>,
    sha512: Vec<f64>,
    jq: Vec<f64>,
    python: Vec<f64>,
    python_note: Option<String>,
    push: Vec<f64>,
    bundle_read: Vec<f64>,
    bundle_write: Vec<f64>,
    tar_x: Vec<f64>,
    tar_c: Vec<f64>,
    signer_version: Vec<f64>,
    courier_version: Vec<f64>,
    rss_pull_kb: i64,
    rss_rotate_kb: i64,
    rss_push_kb: i64,
}

fn setup(work: &Path, shape: &Shape) -> Result<(Env, Results)> {
    let bins = bin_dir()?;
    for b in ["courier", "signer", "factory-sim"] {
        if !bins.join(b).exists() {
            bail!(
                "{} not found: run `cargo build --release -p courier -p signer -p factory-sim` first",
                bins.join(b).display()
            );
        }
    }
    std::fs::create_dir_all(work.join("logs"))?;
    let state = work.join("factory-sim-state");
    let (factory, token) = ("bench".to_string(), "bench-admin-token".to_string());
    let mut res = Results {
        shape: Some(shape.clone()),
        ..Results::default()
    };
    let mut init = Command::new(bins.join("factory-sim"));
    init.arg("init")
        .args([
            "--state",
            p(&state),
            "--factory",
            &factory,
            "--token",
            &token,
        ])
        // A factory that went offline (root v3, the admin's keys tarballs in `offline/`), whose
        // production tags and waves carry the online and the offline targets signature: the
        // targets rotation measured below verifies and re-signs every one of them.
        .args(["--offline-keys", p(&work.join("offline"))])
        .args(["--tags", &shape.tags.to_string()])
        .args(["--waves", &shape.waves.to_string()])
        .args(["--targets", &shape.builds.to_string()])
        .args(["--hardware-ids", &shape.hardware_ids.to_string()])
        .args(["--apps", &shape.apps.to_string()])
        .args(["--prod-window", &shape.prod_window.to_string()]);
    let done = run(init, &work.join("logs").join("000-init"))?;
    if done.code != 0 {
        bail!(
            "factory-sim init failed: {}",
            std::fs::read_to_string(work.join("logs/000-init.err")).unwrap_or_default()
        );
    }
    res.init_secs = done.secs;
    res.ci_bytes = dir_size_matching(&state, "ci")?;

    let server_log = work.join("logs").join("server.log");
    let mut server = Command::new(bins.join("factory-sim"))
        .args(["serve", "--state", p(&state)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&server_log)?)
        .spawn()
        .context("starting factory-sim serve")?;
    let mut first = String::new();
    BufReader::new(server.stdout.take().context("server stdout")?).read_line(&mut first)?;
    let url = first.trim().to_string();
    if !url.starts_with("http") {
        let _ = server.kill();
        bail!("factory-sim serve printed {url:?}");
    }
    let online = work.join("online");
    let offline = work.join("offline");
    std::fs::create_dir_all(&online)?;
    std::fs::create_dir_all(&offline)?;
    let env = Env {
        work: work.to_path_buf(),
        bins,
        url,
        token,
        factory,
        online,
        offline,
        server,
        server_log,
        seq: std::cell::Cell::new(0),
    };

    // The offline laptop: identities, and the factory's root pinned.
    env.signer("identity-init", &["identity", "init"])?;
    let usb = work.join("usb");
    std::fs::create_dir_all(&usb)?;
    let (_, root) = env.courier("show-root", &["show-root"])?;
    let root_file = usb.join("root.json");
    std::fs::write(&root_file, root)?;
    env.signer("trust-init", &["--yes", "trust", "init", p(&root_file)])?;
    Ok((env, res))
}

fn dir_size_matching(dir: &Path, needle: &str) -> Result<u64> {
    let mut total = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let path = e.path();
        if e.file_type()?.is_dir() {
            total += dir_size_matching(&path, needle)?;
        } else if path.to_string_lossy().contains(needle) {
            total += e.metadata()?.len();
        }
    }
    Ok(total)
}

fn measure(work: &Path, shape: &Shape, reps: usize, full: bool) -> Result<Results> {
    let (env, mut res) = setup(work, shape)?;
    let usb = work.join("usb");
    let keys = env.offline.join("root.keys.tgz");
    let keys_saved = work.join("root.keys.tgz.saved");
    std::fs::copy(&keys, &keys_saved)?;
    let tkeys = env.offline.join("targets.keys.tgz");
    let tkeys_saved = work.join("targets.keys.tgz.saved");
    std::fs::copy(&tkeys, &tkeys_saved)?;

    let has_jq = have("jq", "--version");
    let py_ok = Command::new("python3")
        .args(["-c", "import cryptography"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !py_ok {
        res.python_note = Some("python3 with `cryptography` not available: skipped".into());
    }
    let py_script = work.join("baseline.py");
    std::fs::write(&py_script, PYTHON_BASELINE)?;
    let docs_dir = work.join("docs");
    let members_dir = work.join("members");
    let mut doc_files: Vec<PathBuf> = Vec::new();
    let mut requests = Vec::new();
    let mut urls = Vec::new();
    // Each repetition is a whole transaction (a response can be pushed once): init, pull,
    // re-sign, push, cancel. Only pull, re-sign and push are timed.
    for r in 0..reps {
        env.courier(
            "updates-init",
            &[
                "updates",
                "init",
                "-m",
                "Rotate TUF targets offline signing key",
            ],
        )?;
        // 1. courier pull vs curl of the same URLs.
        let req = usb.join(format!("targets-{r}.req.tufbundle"));
        let from = env.server_log_len();
        let (done, _) = env.courier(
            "targets-pull",
            &[
                "updates",
                "pull",
                "--op",
                "rotate-targets",
                "--bundle",
                p(&req),
            ],
        )?;
        res.pull.push(done.secs);
        res.rss_pull_kb = res.rss_pull_kb.max(done.max_rss_kb);
        std::thread::sleep(Duration::from_millis(50));
        if urls.is_empty() {
            urls = env.gets_since(from)?;
        }
        let mut curl = Command::new("curl");
        curl.args(["-sSf", "-H", &format!("OSF-TOKEN: {}", env.token)]);
        for u in &urls {
            curl.args(["-o", "/dev/null", &format!("{}{u}", env.url)]);
        }
        if let Some(t) = baseline(&mut curl)? {
            res.curl.push(t);
        }
        if r == 0 {
            // The targets documents of the request, as files (the baselines' input).
            let b = TransferBundle::read(&req)?;
            res.bundle_file = std::fs::metadata(&req)?.len();
            let mut tar_len = CountingSink(0);
            b.write_stream(&mut tar_len)?;
            res.bundle_tar = tar_len.0;
            std::fs::create_dir_all(&docs_dir)?;
            for (kind, map) in [("prod", b.prod_targets_docs()), ("wave", b.waves_docs())] {
                for (name, doc) in map {
                    let bytes = doc.bytes()?;
                    res.docs += 1;
                    res.docs_bytes += bytes.len() as u64;
                    res.largest_doc = res.largest_doc.max(bytes.len() as u64);
                    let file = docs_dir.join(format!("{kind}-{name}.json"));
                    std::fs::write(&file, bytes)?;
                    doc_files.push(file);
                }
            }
            for name in b.member_names() {
                let dest = members_dir.join(name);
                std::fs::create_dir_all(dest.parent().context("member dir")?)?;
                std::fs::write(&dest, b.member(name)?.context("member")?)?;
            }
        }

        // 2. signer re-sign vs sha512sum, jq -cS, Python.
        std::fs::copy(&keys_saved, &keys)?;
        std::fs::copy(&tkeys_saved, &tkeys)?;
        let resp = usb.join(format!("targets-{r}.resp.tufbundle"));
        let (done, _) = env.signer(
            "targets-rotate",
            &[
                "--yes",
                "rotate-offline-key",
                "--role",
                "targets",
                "--keys",
                p(&keys),
                "--targets-keys",
                p(&tkeys),
                p(&req),
                "-o",
                p(&resp),
            ],
        )?;
        res.rotate.push(done.secs);
        res.rss_rotate_kb = res.rss_rotate_kb.max(done.max_rss_kb);
        if let Some(t) = baseline(Command::new("sha512sum").args(&doc_files))? {
            res.sha512.push(t);
        }
        if has_jq {
            if let Some(t) = baseline(Command::new("jq").arg("-cS").arg(".").args(&doc_files))? {
                res.jq.push(t);
            }
        }
        if py_ok {
            if let Some(t) = baseline(Command::new("python3").arg(&py_script).args(&doc_files))? {
                res.python.push(t);
            }
        }

        // 3. courier push of the response (upload + server-side verification).
        let (done, _) = env.courier("targets-push", &["updates", "push", p(&resp)])?;
        res.push.push(done.secs);
        res.rss_push_kb = res.rss_push_kb.max(done.max_rss_kb);
        env.courier("updates-cancel", &["updates", "cancel"])?;
        requests.push(req);
    }
    res.urls = urls.len();

    // 4. Bundle read/write (in process, plain tar like the tools write) vs tar of the same
    // members.
    let member_names: Vec<String> = {
        let b = TransferBundle::read(&requests[0])?;
        b.member_names().iter().map(|s| s.to_string()).collect()
    };
    let tgz = work.join("members.tar");
    let xdir = work.join("untar");
    for r in 0..reps {
        let t = Instant::now();
        let b = TransferBundle::read(&requests[0])?;
        res.bundle_read.push(t.elapsed().as_secs_f64());
        let out = work.join(format!("rewrite-{r}.tufbundle"));
        let t = Instant::now();
        b.write_atomic(&out, bundle::WRITE_COMPRESSION)?;
        res.bundle_write.push(t.elapsed().as_secs_f64());
        drop(b);
        let _ = std::fs::remove_file(&out);
        let _ = std::fs::remove_file(&tgz);
        let mut c = Command::new("tar");
        c.current_dir(&members_dir)
            .arg("-cf")
            .arg(&tgz)
            .args(&member_names);
        if let Some(t) = baseline(&mut c)? {
            // tar does not fsync; add it so both sides make the file durable.
            let t2 = Instant::now();
            std::fs::File::open(&tgz)?.sync_all()?;
            res.tar_c.push(t + t2.elapsed().as_secs_f64());
        }
        let _ = std::fs::remove_dir_all(&xdir);
        std::fs::create_dir_all(&xdir)?;
        if let Some(t) = baseline(
            Command::new("tar")
                .arg("-xf")
                .arg(&tgz)
                .arg("-C")
                .arg(&xdir),
        )? {
            res.tar_x.push(t);
        }
    }

    // 5. Start-up.
    if full {
        for _ in 0..(reps * 5).max(10) {
            let (d, _) = env.signer("signer-version", &["--version"])?;
            res.signer_version.push(d.secs);
            let (d, _) = env.courier("courier-version", &["--version"])?;
            res.courier_version.push(d.secs);
        }
    }
    Ok(res)
}

fn secs(s: f64) -> String {
    if s < 0.01 {
        format!("{:.1} ms", s * 1000.0)
    } else if s < 10.0 {
        format!("{s:.3} s")
    } else {
        format!("{s:.1} s")
    }
}

fn mb(bytes: f64) -> String {
    format!("{:.1} MB", bytes / 1_048_576.0)
}

/// The report.
struct Report {
    rows: Vec<[String; 6]>,
}

impl Report {
    fn row(&mut self, item: &str, what: &str, stat: Option<Stat>, ratio: String, target: String) {
        let (min, med) = match stat {
            Some(s) => (secs(s.min), secs(s.median)),
            None => ("—".into(), "—".into()),
        };
        self.rows
            .push([item.into(), what.into(), min, med, ratio, target]);
    }

    fn text(&self) -> String {
        let mut s = String::from(
            "| # | measurement | min | median | ratio | target |\n|---|---|---:|---:|---:|---|\n",
        );
        for r in &self.rows {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                r[0], r[1], r[2], r[3], r[4], r[5]
            );
        }
        s
    }
}

fn ratio(a: Option<Stat>, b: Option<Stat>) -> Option<f64> {
    Some(a?.median / b?.median)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

fn table(res: &Results, scaling: Option<(&Results, &Results)>) -> Report {
    let mut rep = Report { rows: Vec::new() };
    let st = |v: &Vec<f64>| Stat::of(v);
    let (pull, curl) = (st(&res.pull), st(&res.curl));
    let r = ratio(pull, curl);
    rep.row(
        "1",
        &format!("courier pull ({} docs, {} GETs)", res.docs, res.urls),
        pull,
        "1.00".into(),
        String::new(),
    );
    rep.row(
        "1",
        "curl, same URLs (baseline)",
        curl,
        r.map(|r| format!("courier = {r:.2}× curl"))
            .unwrap_or_default(),
        r.map(|r| format!("≤ 1.5×: {}", verdict(r <= 1.5)))
            .unwrap_or_default(),
    );
    let rot = st(&res.rotate);
    rep.row(
        "2",
        &format!(
            "signer rotate-offline-key --role targets ({})",
            mb(res.docs_bytes as f64)
        ),
        rot,
        "1.00".into(),
        String::new(),
    );
    let sha = st(&res.sha512);
    let r = ratio(rot, sha);
    rep.row(
        "2",
        "sha512sum, same bytes",
        sha,
        r.map(|r| format!("signer = {r:.2}× sha512sum"))
            .unwrap_or_default(),
        r.map(|r| format!("≤ 4×: {}", verdict(r <= 4.0)))
            .unwrap_or_default(),
    );
    for (name, v, note, goal) in [
        ("jq -cS", &res.jq, None, None),
        (
            "Python json + cryptography ed25519",
            &res.python,
            res.python_note.as_deref(),
            Some(2.0),
        ),
    ] {
        let b = st(v);
        match ratio(b, rot) {
            Some(r) => rep.row(
                "2",
                name,
                b,
                format!("signer {r:.2}× faster"),
                goal.map(|g| format!("≥ {g}× faster: {}", verdict(r >= g)))
                    .unwrap_or_default(),
            ),
            None => rep.row(
                "2",
                name,
                None,
                note.unwrap_or("not available: skipped").into(),
                String::new(),
            ),
        }
    }
    let push = st(&res.push);
    rep.row(
        "3",
        &format!("courier push ({} runs)", res.push.len()),
        push,
        "upload + server-side verification".into(),
        String::new(),
    );
    for (what, ours, theirs, base, goal) in [
        (
            "bundle read (in process, verify digests)",
            &res.bundle_read,
            &res.tar_x,
            "tar -xf",
            2.0,
        ),
        (
            "bundle write (plain tar, atomic)",
            &res.bundle_write,
            &res.tar_c,
            "tar -cf + fsync",
            1.2,
        ),
    ] {
        let (o, t) = (st(ours), st(theirs));
        let r = ratio(o, t);
        rep.row("4", what, o, "1.00".into(), String::new());
        rep.row(
            "4",
            &format!("{base}, same members"),
            t,
            r.map(|r| format!("bundle = {r:.2}× tar"))
                .unwrap_or_default(),
            r.map(|r| format!("≤ {goal}×: {}", verdict(r <= goal)))
                .unwrap_or_default(),
        );
    }
    for (what, v) in [
        ("signer --version", &res.signer_version),
        ("courier --version", &res.courier_version),
    ] {
        let s = st(v);
        rep.row(
            "5",
            what,
            s,
            String::new(),
            s.map(|s| format!("≤ 5 ms: {}", verdict(s.median <= 0.005)))
                .unwrap_or_default(),
        );
    }
    // Bounded memory: 64 MB plus three times the largest document, at every factory size.
    let sizes = std::iter::once(res).chain(scaling.map(|(_, big)| big));
    for res in sizes {
        let label = res.shape.as_ref().map(|s| s.label.as_str()).unwrap_or("");
        let limit = 3.0 * res.largest_doc as f64 + 64.0 * 1_048_576.0;
        for (what, kb) in [
            ("courier pull", res.rss_pull_kb),
            ("signer rotate", res.rss_rotate_kb),
            ("courier push", res.rss_push_kb),
        ] {
            let rss = kb as f64 * 1024.0;
            rep.rows.push([
                "6".into(),
                format!("peak RSS, {what} ({label}, {})", mb(res.docs_bytes as f64)),
                mb(rss),
                String::new(),
                format!(
                    "{:.1}× largest doc ({}); bundle tar {}",
                    rss / res.largest_doc.max(1) as f64,
                    mb(res.largest_doc as f64),
                    mb(res.bundle_tar as f64)
                ),
                format!("≤ {}: {}", mb(limit), verdict(rss <= limit)),
            ]);
        }
    }
    if let Some((small, big)) = scaling {
        let data = big.docs_bytes as f64 / small.docs_bytes.max(1) as f64;
        for (what, a, b) in [
            ("courier pull", &small.pull, &big.pull),
            ("signer rotate", &small.rotate, &big.rotate),
            ("courier push", &small.push, &big.push),
        ] {
            let (a, b) = (st(a), st(b));
            let r = ratio(b, a);
            rep.row(
                "7",
                &format!(
                    "{what}: {} → {} ({data:.2}× data)",
                    small.shape.as_ref().map(|s| s.label.as_str()).unwrap_or(""),
                    big.shape.as_ref().map(|s| s.label.as_str()).unwrap_or("")
                ),
                b,
                r.map(|r| format!("{r:.2}× the time")).unwrap_or_default(),
                r.map(|r| format!("≤ {:.2}×: {}", 1.1 * data, verdict(r <= 1.1 * data)))
                    .unwrap_or_default(),
            );
        }
    }
    rep
}

fn tool_version(cmd: &str, arg: &str) -> String {
    Command::new(cmd)
        .arg(arg)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            let s = String::from_utf8_lossy(&o.stdout).into_owned()
                + &String::from_utf8_lossy(&o.stderr);
            s.lines().next().unwrap_or("").trim().to_string()
        })
        .unwrap_or_else(|| "not available".into())
}

fn machine() -> BTreeMap<&'static str, String> {
    let mut m = BTreeMap::new();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    m.insert("cpu", format!("{cpu}, {cores} cores"));
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| format!("{:.1} GB", kb / 1_048_576.0))
        .unwrap_or_default();
    m.insert("memory", mem);
    m.insert("kernel", tool_version("uname", "-sr"));
    m
}

/// Counts the bytes written to it.
struct CountingSink(u64);

impl std::io::Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() -> Result<()> {
    let args = Args::parse();
    let reps = args.reps.unwrap_or(if args.quick { 2 } else { 3 }).max(1);
    let tmp;
    let work = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            tmp = tempfile::Builder::new()
                .prefix("offline-tuf-bench-")
                .tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let started = Instant::now();
    let load_before = loadavg();
    let shape = Shape::new(args.scale, args.quick);
    eprintln!("bench: main run at {} in {}", shape.label, work.display());
    let main = measure(&work.join("main"), &shape, reps, true)?;
    let load_after_main = loadavg();

    let scaling = if args.no_scaling {
        None
    } else {
        // 4× the data of the main run (bundles have no total size limit: their documents
        // stay on disk).
        let four = Shape::new(args.scale * 4.0, args.quick);
        eprintln!("bench: scaling run at {}", four.label);
        let big = measure(&work.join("scale-4x"), &four, reps, false)?;
        Some(big)
    };
    let scaling_pair: Option<(&Results, &Results)> = scaling.as_ref().map(|big| (&main, big));
    let rep = table(&main, scaling_pair);

    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Generated by `cargo run --release --bin bench --{}{}` (tests/src/bin/bench.rs). Times are wall \
         clock of the real release binaries against `factory-sim serve` on loopback; each figure is \
         repeated {reps}× (min and median), baselines run interleaved in the same run. Ratios use medians.\n",
        if args.quick { " --quick" } else { "" },
        if (args.scale - 1.0).abs() > f64::EPSILON { format!(" --scale {}", trim(args.scale)) } else { String::new() }
    );
    let _ = writeln!(md, "## Machine\n");
    for (k, v) in machine() {
        let _ = writeln!(md, "- {k}: {v}");
    }
    let _ = writeln!(md, "- load average (1/5/15 min): {load_before} at start, {load_after_main} after the main run, {} at the end", loadavg());
    let _ = writeln!(md, "- date: {}", shared::metadata::Timestamp::now());
    let _ = writeln!(
        md,
        "- versions: {}, {}, {}, {}, {}, {}, {}",
        tool_version(p(&bin_dir()?.join("courier")), "--version"),
        tool_version(p(&bin_dir()?.join("signer")), "--version"),
        tool_version("curl", "--version")
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" "),
        tool_version("sha512sum", "--version"),
        tool_version("jq", "--version"),
        tool_version("tar", "--version"),
        tool_version("python3", "--version"),
    );
    let _ = writeln!(md, "\n## Factory\n");
    for (label, r) in std::iter::once(("main", &main)).chain(
        scaling_pair
            .iter()
            .flat_map(|(a, b)| [("scaling", *a), ("scaling", *b)])
            .filter(|(_, r)| !std::ptr::eq(*r, &main)),
    ) {
        if let Some(s) = &r.shape {
            let _ = writeln!(
                md,
                "- {label} ({}): {} production tags, {} waves, {} CI builds × {} hardware ids × {} apps, prod window {}; \
                 CI targets {}; {} targets documents, {} in total, largest {}; request bundle file {} (tar {}); \
                 `factory-sim init` {}",
                s.label, s.tags, s.waves, s.builds, s.hardware_ids, s.apps, s.prod_window,
                mb(r.ci_bytes as f64), r.docs, mb(r.docs_bytes as f64), mb(r.largest_doc as f64),
                mb(r.bundle_file as f64), mb(r.bundle_tar as f64), secs(r.init_secs)
            );
        }
    }
    let _ = writeln!(md, "\n## Results\n");
    md.push_str(&rep.text());
    let _ = writeln!(
        md,
        "\nTotal bench time {}.",
        secs(started.elapsed().as_secs_f64())
    );
    println!("{md}");
    let out = match &args.out {
        Some(o) => o.clone(),
        None if args.quick => work.join("BENCHMARKS.md"),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .ok_or_else(|| anyhow!("no repository root"))?
            .join("BENCHMARKS.md"),
    };
    if args.out.is_some() || !args.quick {
        // Hand-written notes after the marker survive a re-run.
        if let Ok(old) = std::fs::read_to_string(&out) {
            if let Some(i) = old.find(NOTES_MARKER) {
                md.push('\n');
                md.push_str(&old[i..]);
            }
        }
        std::fs::write(&out, &md)?;
        eprintln!("bench: wrote {}", out.display());
    }
    if args.dir.is_some() {
        eprintln!("bench: work files kept in {}", work.display());
    }
    Ok(())
}
