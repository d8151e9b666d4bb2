//! Configuration: fioctl-compatible connection settings and the courier's own settings.
//!
//! An existing fioctl user needs no new setup. Each setting is taken from the first place
//! that has it:
//!
//! | setting | flag | environment | fioctl config file | default |
//! |---------|------|-------------|--------------------|---------|
//! | factory | `--factory/-f` | `FIOCTL_FACTORY` | `factory` | — (required) |
//! | API token | `--token/-t` | `FIOCTL_TOKEN` | `token` | — |
//! | API base URL | `--api-url` | — | `server.url` | `https://api.foundries.io` |
//! | fioctl config file | `--config/-c` | `FIOCTL_CONFIG` | | `$HOME/.config/fioctl.yaml` |
//!
//! Like fioctl, the config file may also hold `extraheaders` (sent on every request),
//! `server.insecure_skip_verify` and an OAuth `clientcredentials.access_token` (sent as
//! `Authorization: Bearer`, used only when no token is configured); the environment
//! variables `CACERT` (extra PEM roots) and `TOKEN_HEADER` (default `OSF-TOKEN`) are
//! honoured. Empty environment variables count as unset.
//!
//! The courier's own settings (the signer's age recipient) live in a small JSON file,
//! `$XDG_CONFIG_HOME/offline-tuf/courier.json` (or `$HOME/.config/offline-tuf/courier.json`),
//! and its records of the request bundles it wrote in
//! `$XDG_STATE_HOME/offline-tuf/courier/` (or `$HOME/.local/state/offline-tuf/courier/`).
//!
//! `COURIER_RETRY_DELAY_MS` sets the first retry delay of idempotent requests (default 500 ms,
//! doubling, at most 8 times the first); tests use it to keep fault scenarios fast.
//!
//! The token is held in a [`Token`], whose `Debug` output is redacted; it is never printed
//! or logged.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::cli::{AddSignerArgs, JsonArg, RemoveSignerArgs, SetRecipientArgs};
use crate::error::{CourierError, Result};
use crate::Ctx;

/// The API base URL fioctl uses when `server.url` is not configured.
pub const DEFAULT_API_URL: &str = "https://api.foundries.io";

/// The default name of the token header.
pub const DEFAULT_TOKEN_HEADER: &str = "OSF-TOKEN";

/// A secret API token. Never printed: `Debug` and `Display` show `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Zeroizing<String>);

impl Token {
    /// Wraps a token string.
    pub fn new(s: impl Into<String>) -> Token {
        Token(Zeroizing::new(s.into()))
    }

    /// The secret value, for the request header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where a setting came from (shown by `courier config show`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// A command-line flag.
    Flag,
    /// An environment variable.
    Env(String),
    /// The fioctl config file.
    FioctlConfig(PathBuf),
    /// The built-in default.
    Default,
    /// Not set anywhere.
    Unset,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => f.write_str("command-line flag"),
            Source::Env(v) => write!(f, "environment variable {v}"),
            Source::FioctlConfig(p) => write!(f, "fioctl config {}", p.display()),
            Source::Default => f.write_str("default"),
            Source::Unset => f.write_str("not set"),
        }
    }
}

/// The global connection flags as typed on the command line.
#[derive(Clone, Debug, Default)]
pub struct GlobalOpts {
    /// `--factory`.
    pub factory: Option<String>,
    /// `--token`.
    pub token: Option<String>,
    /// `--api-url`.
    pub api_url: Option<String>,
    /// `--config`.
    pub config: Option<PathBuf>,
}

/// The settings read from a fioctl YAML config file.
#[derive(Clone, Debug, Default)]
pub struct FioctlConfig {
    /// `factory`.
    pub factory: Option<String>,
    /// `token`.
    pub token: Option<Token>,
    /// `server.url`.
    pub server_url: Option<String>,
    /// `server.insecure_skip_verify`.
    pub insecure_skip_verify: bool,
    /// `extraheaders`: name → value, sent on every request.
    pub extra_headers: BTreeMap<String, String>,
    /// `clientcredentials.access_token` (OAuth).
    pub access_token: Option<Token>,
}

/// Looks up `key` case-insensitively in a YAML mapping (viper keys are case-insensitive).
fn yaml_get<'a>(map: &'a serde_yaml_ng::Value, key: &str) -> Option<&'a serde_yaml_ng::Value> {
    map.as_mapping()?
        .iter()
        .find(|(k, _)| k.as_str().is_some_and(|k| k.eq_ignore_ascii_case(key)))
        .map(|(_, v)| v)
}

/// A YAML scalar as a string (numbers and booleans are written as text, like viper does).
fn yaml_string(v: &serde_yaml_ng::Value) -> Option<String> {
    match v {
        serde_yaml_ng::Value::String(s) => Some(s.clone()),
        serde_yaml_ng::Value::Number(n) => Some(n.to_string()),
        serde_yaml_ng::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
    .filter(|s| !s.is_empty())
}

impl FioctlConfig {
    /// Parses the text of a fioctl config file. Unknown keys are ignored.
    pub fn parse(text: &str) -> std::result::Result<FioctlConfig, String> {
        if text.trim().is_empty() {
            return Ok(FioctlConfig::default());
        }
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        if doc.is_null() {
            return Ok(FioctlConfig::default());
        }
        if doc.as_mapping().is_none() {
            return Err("the top level is not a mapping of keys to values".to_string());
        }
        let server = yaml_get(&doc, "server");
        let mut extra_headers = BTreeMap::new();
        if let Some(map) = yaml_get(&doc, "extraheaders").and_then(|v| v.as_mapping()) {
            for (k, v) in map {
                if let (Some(k), Some(v)) = (k.as_str(), yaml_string(v)) {
                    extra_headers.insert(k.to_string(), v);
                }
            }
        }
        Ok(FioctlConfig {
            factory: yaml_get(&doc, "factory").and_then(yaml_string),
            token: yaml_get(&doc, "token")
                .and_then(yaml_string)
                .map(Token::new),
            server_url: server
                .and_then(|s| yaml_get(s, "url"))
                .and_then(yaml_string),
            insecure_skip_verify: server
                .and_then(|s| yaml_get(s, "insecure_skip_verify"))
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            extra_headers,
            access_token: yaml_get(&doc, "clientcredentials")
                .and_then(|c| yaml_get(c, "access_token"))
                .and_then(yaml_string)
                .map(Token::new),
        })
    }

    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<FioctlConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CourierError::io("cannot read fioctl config", path, e))?;
        FioctlConfig::parse(&text).map_err(|e| {
            CourierError::Config(format!(
                "cannot parse fioctl config {}: {e}",
                path.display()
            ))
        })
    }
}

/// Resolved connection settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The factory name, if configured anywhere.
    pub factory: Option<String>,
    /// Where the factory came from.
    pub factory_source: Source,
    /// The API token, if configured anywhere.
    pub token: Option<Token>,
    /// Where the token came from.
    pub token_source: Source,
    /// The API base URL, without trailing `/`.
    pub api_url: String,
    /// Where the URL came from.
    pub api_url_source: Source,
    /// The fioctl config file that was read, if any.
    pub fioctl_config: Option<PathBuf>,
    /// Headers to send on every request (from the fioctl config).
    pub extra_headers: BTreeMap<String, String>,
    /// Skip TLS verification (fioctl's `server.insecure_skip_verify`).
    pub insecure_skip_verify: bool,
    /// A PEM bundle of extra trusted roots (`CACERT`).
    pub ca_cert: Option<PathBuf>,
    /// Name of the token header (`TOKEN_HEADER`, default `OSF-TOKEN`).
    pub token_header: String,
    /// OAuth access token from the fioctl config (used only without a token).
    pub access_token: Option<Token>,
}

impl Settings {
    /// The factory, or a usage error explaining how to set it.
    pub fn require_factory(&self) -> Result<&str> {
        self.factory.as_deref().ok_or_else(|| {
            CourierError::Usage(
                "no factory configured: pass --factory NAME, set FIOCTL_FACTORY, or put `factory: NAME` \
                 in the fioctl config file"
                    .to_string(),
            )
        })
    }
}

/// Looks up an environment variable, treating an empty value as unset.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, with empty values treated as unset.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn env_get(env: EnvLookup<'_>, name: &str) -> Option<String> {
    env(name).filter(|v| !v.is_empty())
}

/// Which fioctl config file to read, and whether it must exist.
fn fioctl_config_path(opts: &GlobalOpts, env: EnvLookup<'_>) -> Option<(PathBuf, bool)> {
    if let Some(p) = &opts.config {
        return Some((p.clone(), true));
    }
    if let Some(p) = env_get(env, "FIOCTL_CONFIG") {
        return Some((PathBuf::from(p), true));
    }
    env_get(env, "HOME").map(|h| (Path::new(&h).join(".config").join("fioctl.yaml"), false))
}

/// Normalizes and checks an API base URL: http(s) only, trailing `/` removed; plain `http`
/// only to a loopback address, so the token never crosses a network in clear.
pub fn normalize_api_url(url: &str) -> Result<String> {
    let url = url.trim().trim_end_matches('/').to_string();
    let parsed = reqwest::Url::parse(&url)
        .map_err(|e| CourierError::Usage(format!("invalid API URL {url:?}: {e}")))?;
    match parsed.scheme() {
        "https" => Ok(url),
        "http" => {
            let host = parsed.host_str().unwrap_or("");
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(url)
            } else {
                Err(CourierError::Usage(format!(
                    "refusing plain-http API URL {url}: the API token would cross the network unencrypted; \
                     use https (plain http is accepted only for localhost)"
                )))
            }
        }
        other => Err(CourierError::Usage(format!(
            "invalid API URL {url:?}: scheme {other:?} is not http or https"
        ))),
    }
}

/// Resolves the connection settings: flags, then environment, then the fioctl config file,
/// then defaults.
pub fn resolve(opts: &GlobalOpts, env: EnvLookup<'_>) -> Result<Settings> {
    let (file, file_path) = match fioctl_config_path(opts, env) {
        Some((path, must_exist)) => {
            if path.exists() {
                (FioctlConfig::load(&path)?, Some(path))
            } else if must_exist {
                return Err(CourierError::Config(format!(
                    "fioctl config file {} does not exist",
                    path.display()
                )));
            } else {
                (FioctlConfig::default(), None)
            }
        }
        None => (FioctlConfig::default(), None),
    };
    let from_file = || Source::FioctlConfig(file_path.clone().unwrap_or_default());

    let (factory, factory_source) = if let Some(f) = opts.factory.clone().filter(|f| !f.is_empty())
    {
        (Some(f), Source::Flag)
    } else if let Some(f) = env_get(env, "FIOCTL_FACTORY") {
        (Some(f), Source::Env("FIOCTL_FACTORY".into()))
    } else if let Some(f) = file.factory.clone() {
        (Some(f), from_file())
    } else {
        (None, Source::Unset)
    };

    let (token, token_source) = if let Some(t) = opts.token.clone().filter(|t| !t.is_empty()) {
        (Some(Token::new(t)), Source::Flag)
    } else if let Some(t) = env_get(env, "FIOCTL_TOKEN") {
        (Some(Token::new(t)), Source::Env("FIOCTL_TOKEN".into()))
    } else if let Some(t) = file.token.clone() {
        (Some(t), from_file())
    } else {
        (None, Source::Unset)
    };

    let (api_url, api_url_source) = if let Some(u) = opts.api_url.clone().filter(|u| !u.is_empty())
    {
        (u, Source::Flag)
    } else if let Some(u) = file.server_url.clone() {
        (u, from_file())
    } else {
        (DEFAULT_API_URL.to_string(), Source::Default)
    };
    // A bad `--api-url` is a usage error; a bad `server.url` in the file a configuration one.
    let api_url = normalize_api_url(&api_url).map_err(|e| match (&api_url_source, e) {
        (Source::FioctlConfig(path), CourierError::Usage(m)) => {
            CourierError::Config(format!("server.url in {}: {m}", path.display()))
        }
        (_, e) => e,
    })?;

    Ok(Settings {
        factory,
        factory_source,
        token,
        token_source,
        api_url,
        api_url_source,
        fioctl_config: file_path,
        extra_headers: file.extra_headers,
        insecure_skip_verify: file.insecure_skip_verify,
        ca_cert: env_get(env, "CACERT").map(PathBuf::from),
        token_header: env_get(env, "TOKEN_HEADER")
            .unwrap_or_else(|| DEFAULT_TOKEN_HEADER.to_string()),
        access_token: file.access_token,
    })
}

/// Where the courier keeps its own files.
#[derive(Clone, Debug)]
pub struct Paths {
    /// Directory of `courier.json`.
    pub config_dir: PathBuf,
    /// Directory of the request records and transaction notes.
    pub state_dir: PathBuf,
}

impl Paths {
    /// Resolves the directories from `XDG_CONFIG_HOME`/`XDG_STATE_HOME`, else `HOME`.
    pub fn from_env(env: EnvLookup<'_>) -> Result<Paths> {
        let home = env_get(env, "HOME").map(PathBuf::from);
        let no_home = || {
            CourierError::Config(
                "cannot find a place for the courier's files: set HOME (or XDG_CONFIG_HOME and XDG_STATE_HOME)"
                    .to_string(),
            )
        };
        let config_base = match env_get(env, "XDG_CONFIG_HOME") {
            Some(p) => PathBuf::from(p),
            None => home.clone().ok_or_else(no_home)?.join(".config"),
        };
        let state_base = match env_get(env, "XDG_STATE_HOME") {
            Some(p) => PathBuf::from(p),
            None => home.ok_or_else(no_home)?.join(".local").join("state"),
        };
        Ok(Paths {
            config_dir: config_base.join("offline-tuf"),
            state_dir: state_base.join("offline-tuf").join("courier"),
        })
    }

    /// The courier's config file.
    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("courier.json")
    }
}

/// The courier's own settings file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourierConfig {
    /// The signer's age X25519 recipient (`age1…`), to which the initial online root key
    /// is encrypted during the first-time rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// The offline signers' signing identities, by name (`courier config add-signer`): when
    /// any is pinned, a response is pushed only if every step of it is signed by one of them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub signers: BTreeMap<String, shared::attestation::IdentityKey>,
    /// Settings written by a newer courier, kept as they are.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl CourierConfig {
    /// Reads the config file; a missing file is an empty config.
    pub fn load(paths: &Paths) -> Result<CourierConfig> {
        let path = paths.config_file();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| CourierError::Config(format!("cannot parse {}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CourierConfig::default()),
            Err(e) => Err(CourierError::io("cannot read", &path, e)),
        }
    }

    /// Writes the config file atomically.
    pub fn save(&self, paths: &Paths) -> Result<PathBuf> {
        let path = paths.config_file();
        let mut bytes =
            serde_json::to_vec_pretty(self).map_err(|e| CourierError::Config(e.to_string()))?;
        bytes.push(b'\n');
        crate::state::keep(&path, &bytes)?;
        Ok(path)
    }

    /// The recipient, parsed, or an error telling how to set it (a configuration error: a
    /// stored recipient that does not parse was edited by hand).
    pub fn require_recipient(&self) -> Result<age::x25519::Recipient> {
        let r = self.recipient.as_deref().ok_or_else(|| {
            CourierError::Config(
                "no signer recipient configured: on the offline machine run `signer identity init`, then here \
                 `courier config set-recipient age1...`"
                    .to_string(),
            )
        })?;
        parse_recipient(r).map_err(|e| {
            CourierError::Config(format!(
                "the signer recipient in the courier config is unusable: {e}"
            ))
        })
    }
}

/// Parses an age X25519 recipient (`age1…`).
pub fn parse_recipient(s: &str) -> Result<age::x25519::Recipient> {
    s.trim().parse::<age::x25519::Recipient>().map_err(|e| {
        CourierError::Usage(format!(
            "invalid age recipient {:?}: {e}; expected the `age1...` line printed by `signer identity init`",
            s.trim()
        ))
    })
}

/// `courier config set-recipient`: checks and stores the signer's recipient.
pub fn set_recipient(ctx: &Ctx, args: &SetRecipientArgs) -> Result<()> {
    let parsed = parse_recipient(&args.recipient)?;
    let paths = ctx.paths()?;
    let mut cfg = CourierConfig::load(paths)?;
    cfg.recipient = Some(parsed.to_string());
    let path = cfg.save(paths)?;
    ctx.out.line(&format!(
        "Signer recipient set to {parsed} (saved in {}).",
        path.display()
    ));
    Ok(())
}

/// `courier config add-signer NAME IDENTITY`: pins an offline signer's signing identity
/// (`signer identity show --signing` on its laptop; compare the fingerprint out of band).
pub fn add_signer(ctx: &Ctx, args: &AddSignerArgs) -> Result<()> {
    let (name, identity) = (args.name.as_str(), args.identity.as_str());
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(CourierError::Usage(format!(
            "signer name {name:?}: use 1-64 letters, digits, '.', '_' or '-'"
        )));
    }
    let key: shared::attestation::IdentityKey = identity
        .parse()
        .map_err(|e: shared::attestation::AttestationError| CourierError::Usage(e.to_string()))?;
    let paths = ctx.paths()?;
    let mut cfg = CourierConfig::load(paths)?;
    if let Some(old) = cfg.signers.get(name) {
        return Err(CourierError::Usage(format!(
            "a signer named {name} is already pinned (fingerprint {}); remove it first with `courier config remove-signer {name}`",
            old.fingerprint()
        )));
    }
    if let Some((other, _)) = cfg.signers.iter().find(|(_, k)| **k == key) {
        return Err(CourierError::Usage(format!(
            "this identity is already pinned as {other}"
        )));
    }
    cfg.signers.insert(name.to_string(), key);
    let path = cfg.save(paths)?;
    ctx.out.line(&format!(
        "Pinned signer {name}: {key}, fingerprint {} (saved in {}). Compare the fingerprint with `signer identity show` on that laptop. Responses are now pushed only when every step is signed by a pinned signer.",
        key.fingerprint(),
        path.display()
    ));
    Ok(())
}

/// `courier config remove-signer NAME`.
pub fn remove_signer(ctx: &Ctx, args: &RemoveSignerArgs) -> Result<()> {
    let name = args.name.as_str();
    let paths = ctx.paths()?;
    let mut cfg = CourierConfig::load(paths)?;
    if cfg.signers.remove(name).is_none() {
        return Err(CourierError::Usage(format!(
            "no signer named {name:?} is pinned (see `courier config show`)"
        )));
    }
    cfg.save(paths)?;
    ctx.out.line(&format!("Removed signer {name}."));
    Ok(())
}

/// `courier config show`: the settings in effect and their sources; never the token.
pub fn show(ctx: &Ctx, args: &JsonArg) -> Result<()> {
    let (settings, paths) = (ctx.settings()?, ctx.paths()?);
    let cfg = CourierConfig::load(paths)?;
    let token_state = if settings.token.is_some() {
        "set".to_string()
    } else if settings.access_token.is_some() {
        "not set (an OAuth access token from the fioctl config is used)".to_string()
    } else {
        "not set".to_string()
    };
    if args.json {
        ctx.out.json(&serde_json::json!({
            "factory": settings.factory,
            "factory-source": settings.factory_source.to_string(),
            "token": settings.token.is_some(),
            "token-source": settings.token_source.to_string(),
            "api-url": settings.api_url,
            "api-url-source": settings.api_url_source.to_string(),
            "fioctl-config": settings.fioctl_config,
            "recipient": cfg.recipient,
            "signers": cfg.signers.iter().map(|(n, k)| serde_json::json!({
                "name": n, "identity": k.to_string(), "fingerprint": k.fingerprint()
            })).collect::<Vec<_>>(),
            "courier-config": paths.config_file(),
            "state-dir": paths.state_dir,
        }));
        return Ok(());
    }
    let lines = [
        format!(
            "factory:        {} ({})",
            settings.factory.as_deref().unwrap_or("-"),
            settings.factory_source
        ),
        format!("token:          {token_state} ({})", settings.token_source),
        format!(
            "api url:        {} ({})",
            settings.api_url, settings.api_url_source
        ),
        format!(
            "fioctl config:  {}",
            settings
                .fioctl_config
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "none".into())
        ),
        format!(
            "recipient:      {}",
            cfg.recipient
                .as_deref()
                .unwrap_or("not set (courier config set-recipient age1...)")
        ),
        format!(
            "signers:        {}",
            if cfg.signers.is_empty() {
                "none pinned (responses are checked by signatures only; pin with `courier config add-signer`)".to_string()
            } else {
                cfg.signers
                    .iter()
                    .map(|(n, k)| format!("{n} ({})", k.fingerprint()))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
        format!("courier config: {}", paths.config_file().display()),
        format!("state dir:      {}", paths.state_dir.display()),
    ];
    for l in lines {
        ctx.out.line(&l);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    const YAML: &str = "factory: from-file\ntoken: file-token\nserver:\n  url: https://api.example.test/\n  insecure_skip_verify: true\nextraheaders:\n  X-Extra: one\nclientcredentials:\n  access_token: oauth\n";

    #[test]
    fn fioctl_yaml_keys_are_read() {
        let c = FioctlConfig::parse(YAML).unwrap();
        assert_eq!(c.factory.as_deref(), Some("from-file"));
        assert_eq!(c.token.as_ref().unwrap().expose(), "file-token");
        assert_eq!(c.server_url.as_deref(), Some("https://api.example.test/"));
        assert!(c.insecure_skip_verify);
        assert_eq!(c.extra_headers["X-Extra"], "one");
        assert_eq!(c.access_token.unwrap().expose(), "oauth");
        assert!(FioctlConfig::parse("").unwrap().factory.is_none());
        assert!(FioctlConfig::parse("- a\n- b\n").is_err());
        // viper keys are case-insensitive
        assert_eq!(
            FioctlConfig::parse("Factory: x\n")
                .unwrap()
                .factory
                .as_deref(),
            Some("x")
        );
    }

    #[test]
    fn precedence_flag_env_file_default() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap().to_string();
        std::fs::create_dir_all(dir.path().join(".config")).unwrap();
        std::fs::write(dir.path().join(".config/fioctl.yaml"), YAML).unwrap();

        // File only.
        let env = env_of(&[("HOME", &home)]);
        let s = resolve(&GlobalOpts::default(), &env).unwrap();
        assert_eq!(s.factory.as_deref(), Some("from-file"));
        assert!(matches!(s.factory_source, Source::FioctlConfig(_)));
        assert_eq!(s.token.as_ref().unwrap().expose(), "file-token");
        assert_eq!(s.api_url, "https://api.example.test");
        assert_eq!(s.extra_headers.len(), 1);

        // Env beats file; empty env counts as unset.
        let env = env_of(&[
            ("HOME", &home),
            ("FIOCTL_FACTORY", "from-env"),
            ("FIOCTL_TOKEN", ""),
        ]);
        let s = resolve(&GlobalOpts::default(), &env).unwrap();
        assert_eq!(s.factory.as_deref(), Some("from-env"));
        assert_eq!(s.factory_source, Source::Env("FIOCTL_FACTORY".into()));
        assert_eq!(s.token.as_ref().unwrap().expose(), "file-token");

        // Flags beat env.
        let opts = GlobalOpts {
            factory: Some("from-flag".into()),
            token: Some("flag-token".into()),
            api_url: Some("http://127.0.0.1:8080/".into()),
            config: None,
        };
        let s = resolve(&opts, &env).unwrap();
        assert_eq!(s.factory.as_deref(), Some("from-flag"));
        assert_eq!(s.token.as_ref().unwrap().expose(), "flag-token");
        assert_eq!(s.token_source, Source::Flag);
        assert_eq!(s.api_url, "http://127.0.0.1:8080");

        // Defaults without any file.
        let env = env_of(&[("HOME", "/nonexistent-home")]);
        let s = resolve(&GlobalOpts::default(), &env).unwrap();
        assert_eq!(s.api_url, DEFAULT_API_URL);
        assert_eq!(s.api_url_source, Source::Default);
        assert!(s.factory.is_none());
        assert!(s.require_factory().is_err());
        assert_eq!(s.token_header, "OSF-TOKEN");
    }

    #[test]
    fn config_flag_and_env_select_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yaml");
        let b = dir.path().join("b.yaml");
        std::fs::write(&a, "factory: a\n").unwrap();
        std::fs::write(&b, "factory: b\n").unwrap();
        let env = env_of(&[("FIOCTL_CONFIG", b.to_str().unwrap())]);
        assert_eq!(
            resolve(&GlobalOpts::default(), &env)
                .unwrap()
                .factory
                .as_deref(),
            Some("b")
        );
        let opts = GlobalOpts {
            config: Some(a.clone()),
            ..Default::default()
        };
        assert_eq!(resolve(&opts, &env).unwrap().factory.as_deref(), Some("a"));
        // An explicitly named file must exist.
        let opts = GlobalOpts {
            config: Some(dir.path().join("missing.yaml")),
            ..Default::default()
        };
        assert!(resolve(&opts, &env)
            .unwrap_err()
            .to_string()
            .contains("does not exist"));
    }

    #[test]
    fn token_is_never_shown() {
        let t = Token::new("s3cret");
        assert!(!format!("{t:?} {t}").contains("s3cret"));
        let s = resolve(
            &GlobalOpts {
                token: Some("s3cret".into()),
                ..Default::default()
            },
            &env_of(&[]),
        )
        .unwrap();
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn api_url_rules() {
        assert_eq!(
            normalize_api_url("https://x.test//").unwrap(),
            "https://x.test"
        );
        assert!(normalize_api_url("http://localhost:1/").is_ok());
        assert!(normalize_api_url("http://[::1]:1").is_ok());
        assert!(normalize_api_url("http://api.example.test").is_err());
        assert!(normalize_api_url("ftp://x").is_err());
        assert!(normalize_api_url("not a url").is_err());
    }

    #[test]
    fn a_bad_url_is_a_usage_error_as_a_flag_and_a_configuration_one_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("fioctl.yaml");
        std::fs::write(&file, "server:\n  url: http://api.example.test\n").unwrap();
        let env = env_of(&[("FIOCTL_CONFIG", file.to_str().unwrap())]);
        let err = resolve(&GlobalOpts::default(), &env).unwrap_err();
        assert!(matches!(err, CourierError::Config(_)), "{err:?}");
        assert!(err.to_string().starts_with("server.url in "), "{err}");
        let flag = GlobalOpts {
            api_url: Some("ftp://x".into()),
            ..Default::default()
        };
        assert!(matches!(
            resolve(&flag, &env).unwrap_err(),
            CourierError::Usage(_)
        ));
    }

    #[test]
    fn courier_config_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_of(&[
            ("XDG_CONFIG_HOME", dir.path().to_str().unwrap()),
            ("HOME", "/h"),
        ]);
        let paths = Paths::from_env(&env).unwrap();
        assert_eq!(
            paths.state_dir,
            Path::new("/h/.local/state/offline-tuf/courier")
        );
        assert_eq!(
            CourierConfig::load(&paths).unwrap(),
            CourierConfig::default()
        );
        assert!(CourierConfig::default().require_recipient().is_err());
        let id = age::x25519::Identity::generate();
        let cfg = CourierConfig {
            recipient: Some(id.to_public().to_string()),
            ..Default::default()
        };
        cfg.save(&paths).unwrap();
        let back = CourierConfig::load(&paths).unwrap();
        assert_eq!(back, cfg);
        back.require_recipient().unwrap();
        assert!(matches!(
            parse_recipient("age1nope"),
            Err(CourierError::Usage(_))
        ));
        let edited = CourierConfig {
            recipient: Some("age1nope".into()),
            ..Default::default()
        };
        assert!(matches!(
            edited.require_recipient(),
            Err(CourierError::Config(_))
        ));
    }
}
