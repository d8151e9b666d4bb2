//! End-to-end harness: a simulated factory, separate machines (one online, one or two
//! offline) with their own home directories, a directory standing in for the USB stick, and
//! the real `courier` and `signer` binaries.
//!
//! Every command run through a [`World`] is recorded (arguments, exit status, stdout,
//! stderr) so suites can scan everything that was printed, and the demo can show it as a
//! transcript. [`World::device_check`] verifies what the server serves the way a device
//! does: the root chain from version 1, the production chain, and every production and wave
//! targets document under the production root.
//!
//! ## API at a glance
//!
//! * Setting up: [`World::new`]`(`[`WorldOptions`]`{ factory, tags, waves, targets,
//!   prod_behind, root_expires_days, created, echo })` creates the factory and starts the
//!   simulator; machines [`World::online`], [`World::online2`], [`World::offline`],
//!   [`World::offline2`] (each
//!   [`Machine::path`] is in its own home), the stick [`World::usb`] / [`World::write_usb`].
//! * Running: [`World::courier`] (online machine, factory/token/URL set like a fioctl user
//!   has them; [`World::courier_on`] on another online machine) and [`World::signer`] (an offline machine, `SIGNER_HOME` in its home) return
//!   a [`Run`]; check it with [`Run::ok`], [`Run::fails`], [`Run::says`].
//!   [`World::transcript`] lists every run (`E2E_TRANSCRIPT=1` prints it when the world is
//!   dropped).
//! * Workflow steps: [`World::request_first_time_rotation`], [`World::request_rotation`],
//!   [`World::rotate_root`] / [`World::rotate_root_with`], [`World::sign_with`],
//!   [`World::backup_keys`], [`World::push_apply`],
//!   [`World::connect_identity`] (signer identity → courier recipient),
//!   [`World::pin_trust`] (show-root → `signer trust init`, fingerprints compared with
//!   [`World::courier_fingerprint`]), [`World::first_time_rotation`] (workflow 1 whole).
//! * Checking: [`World::device_check`]; [`World::view`] (the simulator's committed state);
//!   [`World::watch`] → [`Unchanged::assert_unchanged`] (server state and files
//!   byte-identical); [`tarball_keys`] / [`tarball_keyids`] (what a plain keys tarball
//!   holds); [`World::api_get`] / [`World::api_send`] (plain HTTP, e.g. to tamper with the
//!   staged root); [`tamper_member`] / [`replace_first`] (alter a bundle after it was
//!   written).
//!
//! Binaries are taken from the target directory next to the test executable (build them
//! first with `cargo build -p courier -p signer`; missing ones are built by [`bin_path`]).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use shared::keys::KeyId;
use shared::metadata::{Role, SignedRoot, SignedTargets, Timestamp};
use shared::tarball::{KeyFileKind, KeysTarball};
use shared::verify;

use factory_sim::{init_factory, FactoryView, InitOptions, InitReport, SimServer};

/// One recorded command run.
#[derive(Clone, Debug)]
pub struct Run {
    /// Which machine ran it (`online`, `offline`, `offline-2`).
    pub machine: String,
    /// The command line as a user would type it (program name and arguments).
    pub command_line: String,
    /// Exit code (`-1` when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Panics with the full output unless the command succeeded; returns `self`.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "command failed: {}\n--- stdout\n{}\n--- stderr\n{}",
            self.command_line, self.stdout, self.stderr
        );
        self
    }

    /// Panics unless the command failed; returns `self`.
    #[track_caller]
    pub fn fails(self) -> Run {
        assert_ne!(
            self.code, 0,
            "command unexpectedly succeeded: {}\n--- stdout\n{}\n--- stderr\n{}",
            self.command_line, self.stdout, self.stderr
        );
        self
    }

    /// Panics unless stdout or stderr contains `needle` (case-insensitive); returns `self`.
    #[track_caller]
    pub fn says(self, needle: &str) -> Run {
        let all = format!("{}\n{}", self.stdout, self.stderr).to_lowercase();
        assert!(
            all.contains(&needle.to_lowercase()),
            "expected {needle:?} in output of {}\n--- stdout\n{}\n--- stderr\n{}",
            self.command_line,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// A machine: its own home directory, so configuration and state never leak between them.
#[derive(Clone, Debug)]
pub struct Machine {
    /// Short name used in transcripts.
    pub name: String,
    /// The machine's `$HOME`.
    pub home: PathBuf,
}

impl Machine {
    fn new(root: &Path, name: &str) -> Machine {
        let home = root.join(name);
        std::fs::create_dir_all(&home).expect("create machine home");
        Machine {
            name: name.to_string(),
            home,
        }
    }

    /// The signer's state directory on this machine.
    pub fn signer_home(&self) -> PathBuf {
        self.home.join("signer-state")
    }

    /// A path in this machine's home directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.home.join(rel)
    }
}

/// Runs `cmd` with a pseudo-terminal as its stdin, stdout and stderr, writing `answers` to
/// the terminal; returns the exit code and everything the terminal showed.
pub fn run_on_pty(mut cmd: Command, answers: &str) -> (i32, String) {
    use std::io::{Read, Write};
    use std::os::fd::{FromRawFd, OwnedFd};
    let (mut master, mut slave): (libc::c_int, libc::c_int) = (-1, -1);
    // SAFETY: openpty writes two new file descriptors into the given integers; the name,
    // termios and window size arguments may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened by openpty and are owned here only.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let stdio = |fd: &OwnedFd| std::process::Stdio::from(fd.try_clone().expect("dup pty"));
    cmd.stdin(stdio(&slave))
        .stdout(stdio(&slave))
        .stderr(stdio(&slave));
    // The terminal becomes the program's controlling terminal, as a person's is: programs
    // that read secrets from /dev/tty (passphrase prompts) find it there.
    // SAFETY: between fork and exec only async-signal-safe calls are made (setsid, ioctl),
    // on the child's own standard input, which is the slave side set above.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            if libc::setsid() == -1 || libc::ioctl(0, libc::TIOCSCTTY, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn on a pseudo-terminal");
    // Only the child keeps the slave side open, so the master sees the end when it exits.
    drop(cmd);
    drop(slave);
    let mut writer = std::fs::File::from(master.try_clone().expect("dup master"));
    let mut reader = std::fs::File::from(master);
    let collector = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                // Linux answers EIO on the master once the last slave descriptor is closed.
                Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => panic!("reading the pseudo-terminal: {e}"),
            }
        }
        out
    });
    // The terminal's line discipline holds the typed lines until the program reads them.
    writer
        .write_all(answers.replace('\n', "\r").as_bytes())
        .expect("type on the pseudo-terminal");
    let status = child.wait().expect("wait for the program");
    drop(writer);
    let out = collector.join().expect("pty reader");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out).replace("\r\n", "\n"),
    )
}

/// Locates a workspace binary (`courier`, `signer`, `factory-sim`, or this crate's `demo` and
/// `bench`) next to the test executable, building it with cargo if it is not there yet.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let candidate = dir.join(name);
    if candidate.exists() {
        return candidate;
    }
    static BUILD: Mutex<()> = Mutex::new(());
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if !candidate.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let profile_release = dir.ends_with("release");
        let mut cmd = Command::new(cargo);
        // `cargo test --workspace` builds a package's binaries only when that package has
        // integration tests; build a missing one explicitly, from its own package (each
        // program is the package of its name; `demo` and `bench` are this crate's).
        let package = match name {
            "demo" | "bench" => "tests",
            program => program,
        };
        cmd.args(["build", "--quiet", "-p", package, "--bin", name]);
        if profile_release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(
            status.success(),
            "cargo build -p {package} --bin {name} failed"
        );
    }
    candidate
}

/// Options for a new [`World`].
#[derive(Clone, Debug)]
pub struct WorldOptions {
    /// Factory name.
    pub factory: String,
    /// Production tags to create.
    pub tags: usize,
    /// Waves to create.
    pub waves: usize,
    /// CI builds to create.
    pub targets: u64,
    /// How many of the newest CI builds are not in production yet (wave candidates).
    pub prod_behind: u64,
    /// Days until root v1 expires (counted from `created`).
    pub root_expires_days: i64,
    /// When the factory was created (default: now). Set it in the past together with a short
    /// `root_expires_days` for a factory whose root has expired.
    pub created: Option<Timestamp>,
    /// Print every command and its output as it runs (the demo).
    pub echo: bool,
    /// Extra environment for every courier and signer run (e.g. `SOFTHSM2_CONF` of a test
    /// token), so tests never change the environment of the shared test process.
    pub env: Vec<(String, String)>,
    /// Where the factory's history starts.
    pub history: History,
    /// Production tags that devices follow (four devices each, for wave rollouts).
    pub device_tags: Vec<String>,
}

/// Where a simulated factory's history starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum History {
    /// A new factory: root v1 with the initial online root key; no production tags or waves
    /// (a real factory has none before it goes offline).
    #[default]
    Fresh,
    /// A factory that went offline (root v3: an offline root key and an offline targets key,
    /// made by `factory-sim init --offline-keys`): the root key holder's laptop holds
    /// `root.keys.tgz` and `targets.keys.tgz`; tags and waves carry the online and the
    /// offline targets signature.
    Offline,
    /// Production tags and waves signed by the online key alone on a factory that never
    /// went offline: a state the real Factory does not produce, for the tests that prove the
    /// toolkit does not endorse such content by itself.
    LegacyOnlineOnlyTags,
}

impl WorldOptions {
    /// A factory that went offline ([`History::Offline`]) with `tags` production tags, and
    /// the defaults otherwise.
    pub fn offline(tags: usize) -> WorldOptions {
        WorldOptions {
            tags,
            history: History::Offline,
            ..WorldOptions::default()
        }
    }
}

impl Default for WorldOptions {
    fn default() -> Self {
        WorldOptions {
            factory: "acme".to_string(),
            tags: 0,
            waves: 0,
            targets: 6,
            prod_behind: 0,
            root_expires_days: 365,
            created: None,
            echo: false,
            env: Vec::new(),
            history: History::Fresh,
            device_tags: Vec::new(),
        }
    }
}

/// A simulated factory plus the machines and the USB stick around it.
pub struct World {
    /// Temporary directory holding everything (kept alive by the world).
    pub root: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    /// The running simulator.
    pub server: Option<SimServer>,
    /// Factory name.
    pub factory: String,
    /// API token of the factory admin.
    pub token: String,
    /// What `factory-sim init` created.
    pub init: InitReport,
    /// The networked machine running the courier.
    pub online: Machine,
    /// A second online machine (another admin's laptop, or the first one after its courier
    /// state was lost): its courier has no copy of the requests the first one wrote.
    pub online2: Machine,
    /// The air-gapped laptop of the root key holder.
    pub offline: Machine,
    /// A second air-gapped laptop (the targets key holder).
    pub offline2: Machine,
    /// The USB stick.
    pub usb: PathBuf,
    echo: bool,
    env: Vec<(String, String)>,
    runs: Mutex<Vec<Run>>,
}

impl World {
    /// Creates a factory in a fresh temporary directory and starts the simulator.
    pub fn new(opts: WorldOptions) -> World {
        let tmp = tempfile::Builder::new()
            .prefix("offline-tuf-e2e-")
            .tempdir()
            .expect("tempdir");
        let root = tmp.path().to_path_buf();
        let mut world = World::in_dir(&root, opts);
        world._tmp = Some(tmp);
        world
    }

    /// Like [`World::new`] but in `root`, which is kept afterwards (the demo).
    pub fn in_dir(root: &Path, opts: WorldOptions) -> World {
        let state = root.join("factory-sim-state");
        let token = format!("{}-admin-token", opts.factory);
        let mut init = InitOptions::new(&state, &opts.factory, &token);
        init.tags = opts.tags;
        init.waves = opts.waves;
        init.targets = opts.targets;
        init.root_expires_days = opts.root_expires_days;
        init.now = opts.created;
        init.prod_behind = opts.prod_behind;
        init.device_tags = opts.device_tags.clone();
        match opts.history {
            History::Fresh => {}
            History::Offline => init.offline_keys = Some(root.join("offline")),
            History::LegacyOnlineOnlyTags => init.legacy_online_only_tags = true,
        }
        let report = init_factory(&init).expect("factory-sim init");
        let server = SimServer::start(&state).expect("start factory-sim");
        let usb = root.join("usb-stick");
        std::fs::create_dir_all(&usb).expect("usb dir");
        World {
            online: Machine::new(root, "online"),
            online2: Machine::new(root, "online-2"),
            offline: Machine::new(root, "offline"),
            offline2: Machine::new(root, "offline-2"),
            usb,
            root: root.to_path_buf(),
            _tmp: None,
            server: Some(server),
            factory: opts.factory,
            token,
            init: report,
            echo: opts.echo,
            env: opts.env,
            runs: Mutex::new(Vec::new()),
        }
    }

    /// The simulator (panics after [`World::stop_server`]).
    pub fn sim(&self) -> &SimServer {
        self.server.as_ref().expect("simulator running")
    }

    /// The simulator's base URL.
    pub fn url(&self) -> String {
        self.sim().url().to_string()
    }

    /// Stops the simulator.
    pub fn stop_server(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
    }

    /// A path on the USB stick.
    pub fn usb(&self, name: &str) -> PathBuf {
        self.usb.join(name)
    }

    /// Runs the courier on the online machine with the factory, token and API URL set the
    /// way a fioctl user has them (environment variables with fioctl's names).
    pub fn courier<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.courier_on(&self.online, args)
    }

    /// Runs the courier on `machine` (e.g. [`World::online2`]), set up like
    /// [`World::courier`]; its configuration and state are that machine's own.
    pub fn courier_on<I, S>(&self, machine: &Machine, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<String> = args
            .into_iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        let mut full = vec!["--api-url".to_string(), self.url()];
        full.extend(args.iter().cloned());
        let mut cmd = Command::new(bin_path("courier"));
        cmd.args(&full)
            .env("FIOCTL_FACTORY", &self.factory)
            .env("FIOCTL_TOKEN", &self.token);
        self.run(machine, "courier", &args, cmd)
    }

    /// Runs the courier on a machine where nothing is set up: no factory, no token, no
    /// fioctl config, and an API URL where nothing listens (`http://127.0.0.1:9`), so that
    /// anything a command says before it needs the network shows, and a command that does
    /// reach the network fails at once.
    pub fn courier_unconfigured<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<String> = args
            .into_iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        let mut cmd = Command::new(bin_path("courier"));
        cmd.arg("--api-url")
            .arg("http://127.0.0.1:9")
            .args(&args)
            .env_remove("FIOCTL_FACTORY")
            .env_remove("FIOCTL_TOKEN");
        self.run(&self.online2, "courier", &args, cmd)
    }

    /// Runs the real `fioctl` (see [`crate::tools::FIOCTL`]) on `machine` against the
    /// simulator, with a config file naming the server, the factory and the admin's token —
    /// the way a fioctl user has it set up (the machine's home holds `fioctl.yaml`).
    pub fn fioctl<I, S>(&self, machine: &Machine, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<String> = args
            .into_iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        let config = machine.home.join("fioctl.yaml");
        std::fs::create_dir_all(&machine.home).expect("machine home");
        std::fs::write(
            &config,
            format!(
                "server:\n  url: {}\nfactory: {}\ntoken: {}\n",
                self.url(),
                self.factory,
                self.token
            ),
        )
        .expect("fioctl config");
        let fioctl = crate::tools::FIOCTL.require().path;
        let mut cmd = Command::new(fioctl);
        cmd.arg("-c").arg(&config).args(&args);
        self.run(machine, "fioctl", &args, cmd)
    }

    /// Runs the signer on an offline machine.
    pub fn signer<I, S>(&self, machine: &Machine, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<String> = args
            .into_iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        let mut cmd = Command::new(bin_path("signer"));
        cmd.args(&args).env("SIGNER_HOME", machine.signer_home());
        self.run(machine, "signer", &args, cmd)
    }

    fn run(
        &self,
        machine: &Machine,
        program: &str,
        shown_args: &[String],
        mut cmd: Command,
    ) -> Run {
        cmd.current_dir(&machine.home)
            .env("HOME", &machine.home)
            .env("XDG_CONFIG_HOME", machine.home.join(".config"))
            .env("XDG_DATA_HOME", machine.home.join(".local/share"))
            .env("XDG_STATE_HOME", machine.home.join(".local/state"))
            .env("NO_COLOR", "1")
            .env_remove("FIOCTL_CONFIG")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null());
        let shown: Vec<String> = shown_args
            .iter()
            .map(|a| {
                let short = a.replace(&format!("{}/", self.root.display()), "");
                if short.contains(' ') {
                    format!("'{short}'")
                } else {
                    short
                }
            })
            .collect();
        let command_line = format!("{program} {}", shown.join(" "));
        let out: Output = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        let run = Run {
            machine: machine.name.clone(),
            command_line,
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        if self.echo {
            println!("\n[{}]$ {}", run.machine, run.command_line);
            for line in run.stdout.lines().chain(run.stderr.lines()) {
                println!("  {line}");
            }
            if run.code != 0 {
                println!("  (exit status {})", run.code);
            }
        }
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(run.clone());
        run
    }

    /// Runs the signer on `machine` on a real terminal (a pseudo-terminal: stdin, stdout
    /// and stderr are its slave side), typing `answers` (lines) as a person would. The
    /// output, echoed answers included, is in [`Run::stdout`]. Used to prove what a person
    /// at the keyboard can and cannot authorize.
    pub fn signer_on_terminal<I, S>(&self, machine: &Machine, args: I, answers: &str) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<String> = args
            .into_iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        let mut cmd = Command::new(bin_path("signer"));
        cmd.args(&args)
            .env("SIGNER_HOME", machine.signer_home())
            .current_dir(&machine.home)
            .env("HOME", &machine.home)
            .env("NO_COLOR", "1")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        let (code, output) = run_on_pty(cmd, answers);
        let run = Run {
            machine: machine.name.clone(),
            command_line: format!(
                "signer {} (on a terminal, typing {answers:?})",
                args.join(" ")
            ),
            code,
            stdout: output,
            stderr: String::new(),
        };
        if self.echo {
            println!("\n[{}]$ {}\n{}", run.machine, run.command_line, run.stdout);
        }
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(run.clone());
        run
    }

    /// `courier rotate-offline-key --role ROLE --bundle REQUEST`, which must succeed: the
    /// request bundle of a root or targets key rotation.
    pub fn request_rotation(&self, role: &str, request: &Path) -> Run {
        self.courier([
            "rotate-offline-key",
            "--role",
            role,
            "--bundle",
            path_str(request),
        ])
        .ok()
    }

    /// `courier rotate-offline-key --role root --first-time --bundle REQUEST`, which must
    /// succeed: the request of the first-time root rotation.
    pub fn request_first_time_rotation(&self, request: &Path) -> Run {
        self.courier([
            "rotate-offline-key",
            "--role",
            "root",
            "--first-time",
            "--bundle",
            path_str(request),
        ])
        .ok()
    }

    /// `signer --yes rotate-offline-key --role root [--first-time] --keys KEYS REQUEST -o
    /// RESPONSE` on `machine` (not checked: refusals are tested with it too): a root key
    /// rotation signed with the root key in KEYS, the new key added to KEYS.
    pub fn rotate_root(
        &self,
        machine: &Machine,
        keys: impl AsRef<OsStr>,
        request: &Path,
        response: &Path,
        first_time: bool,
    ) -> Run {
        let keys = keys.as_ref().to_string_lossy().into_owned();
        let mut args = vec!["--yes", "rotate-offline-key", "--role", "root"];
        if first_time {
            args.push("--first-time");
        }
        args.extend(["--keys", &keys, path_str(request), "-o", path_str(response)]);
        self.signer(machine, &args)
    }

    /// [`World::rotate_root`] (not first-time), which must succeed.
    pub fn rotate_root_with(
        &self,
        machine: &Machine,
        keys: &Path,
        request: &Path,
        response: &Path,
    ) -> Run {
        self.rotate_root(machine, keys, request, response, false)
            .ok()
    }

    /// `signer keys backup --keys KEYS --to DIR` on `machine`, which must succeed; returns
    /// the path of the copy.
    pub fn backup_keys(&self, machine: &Machine, keys: &Path, dir: &Path) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        self.signer(
            machine,
            [
                "keys",
                "backup",
                "--keys",
                path_str(keys),
                "--to",
                path_str(dir),
            ],
        )
        .ok();
        dir.join(keys.file_name().expect("keys file name"))
    }

    /// `signer keys VERB --keys KEYS EXTRA…` on `machine` (not checked): the `keys`
    /// commands that take one keys file (`list`, `encrypt`, `decrypt`, `drill`, …).
    pub fn signer_keys(&self, machine: &Machine, verb: &str, keys: &Path, extra: &[&str]) -> Run {
        let mut args = vec!["keys", verb, "--keys", path_str(keys)];
        args.extend_from_slice(extra);
        self.signer(machine, &args)
    }

    /// `signer keys print --keys KEYS --out SHEET EXTRA…` on `machine` (not checked).
    pub fn keys_print(&self, machine: &Machine, keys: &Path, sheet: &Path, extra: &[&str]) -> Run {
        let mut args = vec!["--out", path_str(sheet)];
        args.extend_from_slice(extra);
        self.signer_keys(machine, "print", keys, &args)
    }

    /// `signer keys export-root --keys KEYS --out FILE
    /// --i-understand-this-exports-a-private-key EXTRA…` on `machine` (not checked).
    pub fn keys_export_root(
        &self,
        machine: &Machine,
        keys: &Path,
        out: &Path,
        extra: &[&str],
    ) -> Run {
        let mut args = vec![
            "--out",
            path_str(out),
            "--i-understand-this-exports-a-private-key",
        ];
        args.extend_from_slice(extra);
        self.signer_keys(machine, "export-root", keys, &args)
    }

    /// `signer --yes sign --keys KEYS INPUT -o OUTPUT` on `machine`, which must succeed: the
    /// root key holder signs the staged roots of a request or of an earlier step.
    pub fn sign_with(&self, machine: &Machine, keys: &Path, input: &Path, output: &Path) -> Run {
        self.signer(
            machine,
            [
                "--yes",
                "sign",
                "--keys",
                path_str(keys),
                path_str(input),
                "-o",
                path_str(output),
            ],
        )
        .ok()
    }

    /// `signer --yes rotate-offline-key --role targets --keys KEYS --targets-keys TARGETS
    /// REQUEST -o RESPONSE` on `machine`, which must succeed: the offline targets key goes
    /// into (or is rotated within) `targets_keys`, the roots are signed with `keys` (a keys
    /// tarball or a `pkcs11:` URI).
    pub fn rotate_targets(
        &self,
        machine: &Machine,
        keys: impl AsRef<OsStr>,
        targets_keys: &Path,
        request: &Path,
        response: &Path,
    ) -> Run {
        self.rotate_targets_with(
            machine,
            Some(keys.as_ref()),
            targets_keys,
            request,
            response,
        )
    }

    /// The targets key holder's half of a targets rotation (no root keys on `machine`):
    /// `signer --yes rotate-offline-key --role targets --targets-keys TARGETS REQUEST -o
    /// STEP`, which must succeed; the root key holder signs `step` next.
    pub fn rotate_targets_half(
        &self,
        machine: &Machine,
        targets_keys: &Path,
        request: &Path,
        step: &Path,
    ) -> Run {
        self.rotate_targets_with(machine, None, targets_keys, request, step)
    }

    fn rotate_targets_with(
        &self,
        machine: &Machine,
        keys: Option<&OsStr>,
        targets_keys: &Path,
        request: &Path,
        response: &Path,
    ) -> Run {
        let mut args: Vec<OsString> = ["--yes", "rotate-offline-key", "--role", "targets"]
            .map(OsString::from)
            .to_vec();
        if let Some(k) = keys {
            args.extend(["--keys".into(), k.to_os_string()]);
        }
        args.extend([
            "--targets-keys".into(),
            targets_keys.into(),
            request.into(),
            "-o".into(),
            response.into(),
        ]);
        let run = self.signer(machine, args).ok();
        self.endorse_left_targets(machine, targets_keys, &run, response, &[]);
        run
    }

    /// After a targets rotation (`rotation`, which wrote `response`): the production tags
    /// and waves it left unsigned because they carry no offline signature yet (the first
    /// rotation of a factory whose tags were signed by the online key only) are endorsed
    /// explicitly by the targets key holder, the way the signer's message tells a person
    /// to: `signer sign-prod-targets --tags …` and `signer sign-wave NAME`, each a step of
    /// its own on `response` (replaced in place through a temporary name). `extra` goes to
    /// each signer command (e.g. `--passphrase-file F`).
    pub fn endorse_left_targets(
        &self,
        machine: &Machine,
        targets_keys: &Path,
        rotation: &Run,
        response: &Path,
        extra: &[&str],
    ) {
        let left = |dir: &str| -> Vec<String> {
            rotation
                .stdout
                .lines()
                .filter_map(|l| l.trim().strip_prefix(&format!("- leave {dir}/")))
                .filter_map(|rest| rest.split_whitespace().next())
                .map(str::to_string)
                .collect()
        };
        let (tags, waves) = (left("prod-targets"), left("waves"));
        let mut commands: Vec<Vec<String>> = Vec::new();
        if !tags.is_empty() {
            commands.push(vec![
                "sign-prod-targets".into(),
                "--tags".into(),
                tags.join(","),
            ]);
        }
        for w in waves {
            commands.push(vec!["sign-wave".into(), w]);
        }
        for cmd in commands {
            let input = response.with_extension("before-endorsing.tufbundle");
            std::fs::rename(response, &input)
                .unwrap_or_else(|e| panic!("rename {}: {e}", response.display()));
            let mut args: Vec<String> = vec!["--yes".into()];
            args.extend(cmd);
            args.extend([
                "--targets-keys".into(),
                path_str(targets_keys).into(),
                path_str(&input).into(),
                "-o".into(),
                path_str(response).into(),
            ]);
            args.extend(extra.iter().map(|s| s.to_string()));
            self.signer(machine, &args).ok();
            std::fs::remove_file(&input).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
        }
    }

    /// A wave released the way an admin does it, which is how a production tag comes to be:
    /// `courier waves init NAME VERSION TAG`, `signer sign-wave NAME --targets-keys
    /// TARGETS_KEYS` on `machine`, `courier waves push`, then the wave completed (`fioctl
    /// waves complete`, here `courier waves complete`). Tag `tag` then serves the wave's targets,
    /// signed by the online and the offline targets key. `extra` goes to `sign-wave` (e.g.
    /// `--passphrase-file F`).
    pub fn release_wave(
        &self,
        machine: &Machine,
        targets_keys: &Path,
        (name, version, tag): (&str, u64, &str),
        extra: &[&str],
    ) {
        let req = self.usb(&format!("{name}.req.tufbundle"));
        let resp = self.usb(&format!("{name}.resp.tufbundle"));
        let v = version.to_string();
        self.courier(["waves", "init", name, &v, tag, "--bundle", path_str(&req)])
            .ok();
        let mut args = vec![
            "--yes",
            "sign-wave",
            name,
            "--targets-keys",
            path_str(targets_keys),
            path_str(&req),
            "-o",
            path_str(&resp),
        ];
        args.extend(extra);
        self.signer(machine, &args).ok();
        self.courier(["waves", "push", path_str(&resp)]).ok();
        self.complete_wave(name);
    }

    /// `courier waves complete NAME`, which must succeed.
    pub fn complete_wave(&self, name: &str) {
        self.courier(["waves", "complete", name]).ok();
    }

    /// `courier updates push RESPONSE --apply`, which must succeed.
    pub fn push_apply(&self, response: &Path) -> Run {
        self.courier(["updates", "push", path_str(response), "--apply"])
            .ok()
    }

    /// The offline targets key ids of the served root: every targets key but the online one.
    pub fn offline_targets(&self) -> Vec<KeyId> {
        let view = self.view();
        let online = view.online_keys().targets.clone();
        view.ci_root()
            .expect("ci root")
            .signed
            .offline_targets_keys([&online])
    }

    /// Panics unless the served targets of every production tag and of every active wave
    /// carry a signature by `key`.
    #[track_caller]
    pub fn assert_targets_signed_by(&self, key: &KeyId) {
        let view = self.view();
        let tags = view.tags().into_iter().map(|t| {
            let doc = view.prod_targets(&t).expect("prod targets").expect("tag");
            (format!("tag {t}"), doc)
        });
        let waves = view
            .waves()
            .into_iter()
            .filter(|w| w.status == factory_sim::WaveStatus::Active)
            .map(|w| {
                let doc = view
                    .wave_targets(&w.name)
                    .expect("wave targets")
                    .expect("wave");
                (format!("wave {}", w.name), doc)
            });
        for (what, doc) in tags.chain(waves) {
            let ids: Vec<&KeyId> = doc.signatures.iter().map(|s| &s.keyid).collect();
            assert!(ids.contains(&key), "{what} not signed by {key}: {ids:?}");
        }
    }

    /// Compares what `run` printed with the snapshot `name` (`tests/snapshots/NAME.md`, see
    /// [`crate::snapshot`]): the command line, exit status, standard output and standard error,
    /// with run-dependent parts replaced by placeholders.
    #[track_caller]
    pub fn snapshot_run(&self, name: &str, run: &Run) {
        crate::snapshot::assert_snapshot(self, name, run);
    }

    /// The factory's committed state on the simulator (for assertions).
    pub fn view(&self) -> FactoryView {
        self.sim().factory(&self.factory).expect("factory view")
    }

    /// The simulator's commit point for this factory (`factory.json`), byte for byte: equal
    /// before and after a command means the command changed nothing on the server (targets
    /// documents are content-addressed blobs referenced from it).
    pub fn server_state(&self) -> Vec<u8> {
        let path = self
            .sim()
            .state_dir()
            .join("factories")
            .join(&self.factory)
            .join("factory.json");
        std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// Writes a file onto the USB stick (e.g. something printed on one machine and carried
    /// to another); returns its path.
    pub fn write_usb(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.usb(name);
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// `signer identity init` on `machine`, then `courier config set-recipient` on the online
    /// machine with the recipient it printed. Returns the recipient (`age1…`).
    pub fn connect_identity(&self, machine: &Machine) -> String {
        self.signer(machine, ["identity", "init"]).ok();
        let recipient = self
            .signer(machine, ["identity", "show", "--recipient"])
            .ok()
            .stdout
            .trim()
            .to_string();
        assert!(recipient.starts_with("age1"), "recipient: {recipient}");
        self.courier(["config", "set-recipient", &recipient]).ok();
        recipient
    }

    /// The signing identity (`ed25519:…`) of the signer on `machine`, created with `signer
    /// identity init` if the machine has none yet.
    pub fn signing_identity(&self, machine: &Machine) -> String {
        let show = self.signer(machine, ["identity", "show", "--signing"]);
        let out = if show.code == 0 {
            show
        } else {
            self.signer(machine, ["identity", "init"]).ok();
            self.signer(machine, ["identity", "show", "--signing"]).ok()
        };
        let id = out.stdout.trim().to_string();
        assert!(id.starts_with("ed25519:"), "signing identity: {id}");
        id
    }

    /// The two key holders pin each other as cosigners (`signer cosigner add`, after
    /// comparing fingerprints — which the harness does by construction): the root key
    /// holder (`offline`) pins the targets key holder (`offline2`) as `targets-holder`, and
    /// the other way round as `root-holder`; the courier pins both (`courier config
    /// add-signer`), so it pushes only responses whose every step one of them signed.
    pub fn pin_cosigners(&self) {
        let root_holder = self.signing_identity(&self.offline);
        let targets_holder = self.signing_identity(&self.offline2);
        self.signer(
            &self.offline,
            [
                "--yes",
                "cosigner",
                "add",
                "targets-holder",
                &targets_holder,
            ],
        )
        .ok();
        self.signer(
            &self.offline2,
            ["--yes", "cosigner", "add", "root-holder", &root_holder],
        )
        .ok();
        self.courier(["config", "add-signer", "root-holder", &root_holder])
            .ok();
        self.courier(["config", "add-signer", "targets-holder", &targets_holder])
            .ok();
    }

    /// The courier's fingerprint of the current CI root (`courier show-root --fingerprint`,
    /// the part after the colon).
    pub fn courier_fingerprint(&self) -> String {
        let out = self.courier(["show-root", "--fingerprint"]).ok().stdout;
        let (_, fp) = out
            .trim()
            .split_once(": ")
            .unwrap_or_else(|| panic!("unexpected fingerprint line: {out}"));
        fp.trim().to_string()
    }

    /// Pins the factory's current CI root on `machine` the careful way: `courier show-root`
    /// saved to `<machine>-root.json` on the USB stick, `signer trust init` of that file, and
    /// the fingerprint the signer showed compared with `courier show-root --fingerprint`.
    /// `extra` is appended to `signer trust init` (e.g. `--allow-expired`). Returns the
    /// fingerprint.
    pub fn pin_trust(&self, machine: &Machine, extra: &[&str]) -> String {
        let shown = self.courier(["show-root"]).ok().stdout;
        let file = self.write_usb(&format!("{}-root.json", machine.name), shown);
        let mut args = vec!["--yes".to_string(), "trust".into(), "init".into()];
        args.push(file.display().to_string());
        args.extend(extra.iter().map(|s| s.to_string()));
        let out = self.signer(machine, &args).ok();
        let fp = self.courier_fingerprint();
        out.says(&fp);
        fp
    }

    /// Workflow 1, the first-time root rotation, as a user runs it: `signer identity init`
    /// (offline) → `courier config set-recipient` → `courier rotate-offline-key --role root
    /// --first-time` → `signer trust init` (fingerprints compared) → `signer inspect` →
    /// `signer rotate-offline-key --role root --first-time` creating `keys` (a tarball path or
    /// a `pkcs11:` URI) → `courier
    /// updates push --apply`. Bundles are `first.req.tufbundle` / `first.resp.tufbundle` on
    /// the USB stick. Returns the new offline root key id.
    pub fn first_time_rotation(&self, machine: &Machine, keys: impl AsRef<OsStr>) -> KeyId {
        let keys = keys.as_ref().to_string_lossy().into_owned();
        self.connect_identity(machine);
        let req = self.usb("first.req.tufbundle");
        let resp = self.usb("first.resp.tufbundle");
        let out = self.request_first_time_rotation(&req);
        let fp = self.pin_trust(machine, &[]);
        out.says(&fp);
        self.signer(machine, ["inspect", path_str(&req)])
            .ok()
            .says("first-time-root-rotation");
        self.rotate_root(machine, keys, &req, &resp, true).ok();
        self.courier(["updates", "push", path_str(&resp), "--apply"])
            .ok();
        let root = self.view().ci_root().expect("ci root");
        let ids = root.signed.role_keyids(Role::Root);
        assert_eq!(
            ids.len(),
            1,
            "one offline root key after the first rotation"
        );
        ids[0].clone()
    }

    /// Every command run so far.
    pub fn transcript(&self) -> Vec<Run> {
        self.runs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `GET path` on the simulator with the admin token, the way any HTTP client would
    /// (`None` on 404; panics on other errors).
    pub fn api_get(&self, path: &str) -> Option<Vec<u8>> {
        self.get(path)
    }

    /// Sends `method path` with a JSON body and the admin token, like a plain HTTP client
    /// (or another admin's tool) would; returns the status code and the body.
    pub fn api_send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, String) {
        let url = format!("{}{}", self.url(), path);
        let resp = reqwest::blocking::Client::new()
            .request(method, &url)
            .header("OSF-TOKEN", &self.token)
            .json(body)
            .send()
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = resp.status().as_u16();
        (status, resp.text().unwrap_or_default())
    }

    /// Compares `text` (a listing, a table of refusals) with the snapshot `name`
    /// (`tests/snapshots/NAME.md`), after [`crate::snapshot::normalize`].
    #[track_caller]
    pub fn snapshot_text(&self, name: &str, text: &str) {
        crate::snapshot::assert_text(self, name, text);
    }

    /// Records the server's state and the bytes of `files` now, for
    /// [`Unchanged::assert_unchanged`] after a command that must change nothing.
    pub fn watch(&self, files: &[&Path]) -> Unchanged<'_> {
        Unchanged {
            world: self,
            server: self.server_state(),
            files: snapshot_files(files),
        }
    }

    fn get(&self, path: &str) -> Option<Vec<u8>> {
        let url = format!("{}{}", self.url(), path);
        let resp = reqwest::blocking::Client::new()
            .get(&url)
            .header("OSF-TOKEN", &self.token)
            .send()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        if resp.status().as_u16() == 404 {
            return None;
        }
        assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
        Some(resp.bytes().expect("body").to_vec())
    }

    fn served_chain(&self, production: bool) -> Vec<SignedRoot> {
        let repo = format!("/ota/repo/{}/api/v1/user_repo", self.factory);
        let q = if production { "?production=1" } else { "" };
        let mut chain = Vec::new();
        for n in 1.. {
            match self.get(&format!("{repo}/{n}.root.json{q}")) {
                Some(bytes) => {
                    chain.push(SignedRoot::from_json(&bytes).expect("served root parses"))
                }
                None => break,
            }
        }
        chain
    }

    /// Verifies what the server serves, as a device would; panics with the reason otherwise.
    pub fn device_check(&self) -> DeviceReport {
        let now = Timestamp::now();
        let mut report = DeviceReport::default();
        for production in [false, true] {
            let chain = self.served_chain(production);
            assert!(
                !chain.is_empty(),
                "no root served (production={production})"
            );
            verify::verify_self_signed(&chain[0], "root v1").expect("root v1 verifies");
            let last = verify::verify_chain(&chain[0], &chain).unwrap_or_else(|e| {
                panic!("served chain (production={production}) does not verify: {e}")
            });
            verify::check_expiry("latest root", &last.signed.expires, &now)
                .expect("latest root not expired");
            if production {
                report.prod_version = last.signed.version;
            } else {
                report.ci_version = last.signed.version;
            }
        }
        let repo = format!("/ota/repo/{}/api/v1/user_repo", self.factory);
        let ci = SignedRoot::from_json(&self.get(&format!("{repo}/root.json")).expect("root.json"))
            .expect("ci root");
        let prod = SignedRoot::from_json(
            &self
                .get(&format!("{repo}/root.json?production=1"))
                .expect("prod root"),
        )
        .expect("prod root");
        if ci.signed.version > 1 {
            verify::verify_ci_prod_pair(&ci.signed, &prod.signed)
                .expect("CI and prod roots differ only in the targets threshold");
        }
        let factories = format!("/ota/factories/{}", self.factory);
        for (kind, path) in [
            ("prod", format!("{factories}/prod-targets/?tag=")),
            ("wave", format!("{factories}/wave-targets/?name=")),
        ] {
            let Some(body) = self.get(&path) else {
                continue;
            };
            let docs: std::collections::BTreeMap<String, SignedTargets> =
                serde_json::from_slice(&body).expect("targets map parses");
            for (name, doc) in docs {
                let offline_targets = prod
                    .signed
                    .role_keyids(shared::metadata::Role::Targets)
                    .len()
                    > 1;
                if offline_targets {
                    verify::verify_targets(&prod.signed, &doc, &format!("{kind} targets {name}"))
                        .unwrap_or_else(|e| panic!("{kind} targets {name} do not verify under the production root: {e}"));
                }
                report.targets_checked.push(format!("{kind}:{name}"));
            }
        }
        report
    }
}

impl Drop for World {
    /// Stops the simulator; with `E2E_TRANSCRIPT=1` in the environment, first prints every
    /// command run and its output (see them with `cargo test -- --nocapture`).
    fn drop(&mut self) {
        if std::env::var_os("E2E_TRANSCRIPT").is_some() && !self.echo {
            for run in self.transcript() {
                println!(
                    "\n[{}]$ {}  (exit {})",
                    run.machine, run.command_line, run.code
                );
                for line in run.stdout.lines().chain(run.stderr.lines()) {
                    println!("  {line}");
                }
            }
        }
        self.stop_server();
    }
}

/// What [`World::device_check`] verified.
#[derive(Clone, Debug, Default)]
pub struct DeviceReport {
    /// Latest CI root version.
    pub ci_version: u64,
    /// Latest production root version.
    pub prod_version: u64,
    /// Production (`prod:<tag>`) and wave (`wave:<name>`) targets verified.
    pub targets_checked: Vec<String>,
}

/// A path as `&str` (test paths are UTF-8).
pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// One key in a keys tarball, as the tests look at it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TarballKey {
    /// The key id.
    pub keyid: KeyId,
    /// The role from the file name (`first-root` → root).
    pub role: Option<Role>,
    /// `tufrepo/keys/first-root.*` (the initial Foundries root key).
    pub first_root: bool,
    /// Whether the private half is there.
    pub has_private: bool,
}

/// The keys of a plain (`.tgz`) keys tarball, sorted by key id.
pub fn tarball_keys(path: &Path) -> Vec<TarballKey> {
    let t = KeysTarball::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut keys: Vec<TarballKey> = t
        .keys()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .map(|k| TarballKey {
            role: k.role(),
            first_root: k.kind == KeyFileKind::FirstRoot,
            has_private: k.sec_file.is_some(),
            keyid: k.keyid,
        })
        .collect();
    keys.sort_by(|a, b| a.keyid.cmp(&b.keyid));
    keys
}

/// Key ids of `role` in a plain keys tarball (generated and first-root keys).
pub fn tarball_keyids(path: &Path, role: Role) -> Vec<KeyId> {
    tarball_keys(path)
        .into_iter()
        .filter(|k| k.role == Some(role))
        .map(|k| k.keyid)
        .collect()
}

/// The bytes of each file (`None` if missing), to show that a command left them alone.
pub fn snapshot_files(paths: &[&Path]) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    paths
        .iter()
        .map(|p| (p.to_path_buf(), std::fs::read(p).ok()))
        .collect()
}

/// What [`World::watch`] recorded: the server's committed state and some files.
pub struct Unchanged<'a> {
    world: &'a World,
    server: Vec<u8>,
    files: Vec<(PathBuf, Option<Vec<u8>>)>,
}

impl Unchanged<'_> {
    /// Panics unless the server's state and every watched file (or its absence) are exactly
    /// as recorded.
    #[track_caller]
    pub fn assert_unchanged(&self) {
        assert!(
            self.world.server_state() == self.server,
            "the server's state changed"
        );
        let now = snapshot_files(
            &self
                .files
                .iter()
                .map(|(p, _)| p.as_path())
                .collect::<Vec<_>>(),
        );
        for ((path, before), (_, after)) in self.files.iter().zip(now) {
            assert!(
                *before == after,
                "{} changed (existed before: {}, exists now: {})",
                path.display(),
                before.is_some(),
                after.is_some()
            );
        }
    }
}

/// Copies the bundle (or any tar/tar.gz archive) `src` to `dst` with member `member`
/// edited by `edit`, keeping the other members and the compression: a bundle tampered with
/// after it was written, whose manifest digests no longer match. Panics if `member` is
/// missing.
pub fn tamper_member(src: &Path, dst: &Path, member: &str, edit: impl FnOnce(&mut Vec<u8>)) {
    use shared::archive::{self, Compression, MemberRef};
    let bytes = std::fs::read(src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let compression = Compression::detect(&bytes);
    let mut members = archive::read(&bytes, &shared::bundle::LIMITS).expect("readable archive");
    let target = members
        .iter_mut()
        .find(|m| m.name == member)
        .unwrap_or_else(|| panic!("no member {member} in {}", src.display()));
    let mut data = target.data.to_vec();
    edit(&mut data);
    *target.data = data;
    let refs: Vec<MemberRef<'_>> = members
        .iter()
        .map(|m| MemberRef {
            name: &m.name,
            data: &m.data,
            mode: 0o644,
        })
        .collect();
    let out = archive::write(&refs, compression).expect("write archive");
    std::fs::write(dst, &*out).unwrap_or_else(|e| panic!("{}: {e}", dst.display()));
}

/// Replaces the first occurrence of `from` by `to` in `data` (panics if absent).
pub fn replace_first(data: &mut Vec<u8>, from: &str, to: &str) {
    let text = String::from_utf8(std::mem::take(data)).expect("UTF-8 member");
    assert!(text.contains(from), "{from:?} not found");
    *data = text.replacen(from, to, 1).into_bytes();
}
