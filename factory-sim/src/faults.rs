//! Fault injection for reliability tests.
//!
//! Spec string (CLI `--faults`, or [`FaultConfig::parse`]):
//! `rate=0.2,kinds=500|reset|delay|truncate,seed=N[,delay-ms=N][,match=SUBSTRING]`.
//!
//! | kind | when | effect | state |
//! |------|------|--------|-------|
//! | `500` | before handling | `500` with a JSON error body | untouched |
//! | `reset` | before handling | connection closed without any response | untouched |
//! | `delay` | before handling | sleeps `delay-ms` (default 1500), then handles normally | changed normally |
//! | `truncate` | after handling | headers announce the full `Content-Length`, half the body is sent, connection closed | **committed** (a lost response) |
//! | `reset-after` | after handling | connection closed without any response | **committed** (a lost response) |
//! | `apply-interrupt` | inside `apply` only | validated, status set to `APPLYING`, then `503`; nothing published; re-run apply to finish | `APPLYING` |
//!
//! So a fault never leaves a half-made change: either nothing happened, or the change was
//! committed and only the answer was lost. `rate` is the probability per request; `seed`
//! makes the sequence reproducible; `match` limits faults to paths containing the substring.
//! Tests can also queue one-shot faults with [`SimServer::inject_fault`](super::SimServer::inject_fault).

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One kind of injected fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// Answer 500 without handling the request.
    Status500,
    /// Close the connection without a response, before handling.
    Reset,
    /// Handle the request, commit, then close the connection without a response.
    ResetAfter,
    /// Sleep, then handle normally.
    Delay,
    /// Handle, commit, then send a response whose body is cut short of its Content-Length.
    Truncate,
    /// On `apply` only: validate and enter `APPLYING`, then fail with 503 before publishing.
    ApplyInterrupt,
}

impl FaultKind {
    /// The spec name (`500`, `reset`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Status500 => "500",
            FaultKind::Reset => "reset",
            FaultKind::ResetAfter => "reset-after",
            FaultKind::Delay => "delay",
            FaultKind::Truncate => "truncate",
            FaultKind::ApplyInterrupt => "apply-interrupt",
        }
    }

    /// Whether this kind can hit a request to `path`.
    fn applies_to(self, path: &str) -> bool {
        self != FaultKind::ApplyInterrupt || path.ends_with("/root/updates/apply")
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FaultKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim() {
            "500" => FaultKind::Status500,
            "reset" => FaultKind::Reset,
            "reset-after" => FaultKind::ResetAfter,
            "delay" => FaultKind::Delay,
            "truncate" => FaultKind::Truncate,
            "apply-interrupt" => FaultKind::ApplyInterrupt,
            other => {
                return Err(format!(
                    "unknown fault kind {other:?} (expected 500, reset, reset-after, delay, truncate, apply-interrupt)"
                ))
            }
        })
    }
}

/// Random fault injection settings, parsed from
/// `rate=0.2,kinds=500|reset|delay|truncate,seed=N[,delay-ms=N][,match=SUBSTRING]`
/// (kinds: `500`, `reset`, `reset-after`, `delay`, `truncate`, `apply-interrupt`; `match`
/// limits faults to paths containing the substring; `delay-ms` defaults to 1500).
#[derive(Clone, Debug, PartialEq)]
pub struct FaultConfig {
    /// Probability of a fault per request, 0.0..=1.0.
    pub rate: f64,
    /// Kinds to choose from (uniformly).
    pub kinds: Vec<FaultKind>,
    /// RNG seed.
    pub seed: u64,
    /// Sleep of the `delay` kind.
    pub delay: Duration,
    /// Only requests whose path contains this substring get faults.
    pub path_contains: Option<String>,
}

impl FaultConfig {
    /// Parses `rate=0.2,kinds=500|reset|delay|truncate,seed=N[,delay-ms=N][,match=S]`.
    pub fn parse(spec: &str) -> Result<FaultConfig, String> {
        let mut cfg = FaultConfig {
            rate: 0.0,
            kinds: vec![
                FaultKind::Status500,
                FaultKind::Reset,
                FaultKind::Delay,
                FaultKind::Truncate,
            ],
            seed: 0,
            delay: Duration::from_millis(1500),
            path_contains: None,
        };
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("fault option {part:?} is not key=value"))?;
            match k.trim() {
                "rate" => {
                    cfg.rate = v
                        .parse::<f64>()
                        .ok()
                        .filter(|r| (0.0..=1.0).contains(r))
                        .ok_or_else(|| {
                            format!("rate must be a number between 0 and 1, not {v:?}")
                        })?
                }
                "kinds" => {
                    cfg.kinds = v
                        .split('|')
                        .map(FaultKind::from_str)
                        .collect::<Result<_, _>>()?;
                    if cfg.kinds.is_empty() {
                        return Err("kinds must name at least one fault kind".into());
                    }
                }
                "seed" => {
                    cfg.seed = v
                        .parse()
                        .map_err(|_| format!("seed must be an integer, not {v:?}"))?
                }
                "delay-ms" => {
                    cfg.delay = Duration::from_millis(
                        v.parse()
                            .map_err(|_| format!("delay-ms must be an integer, not {v:?}"))?,
                    )
                }
                "match" => cfg.path_contains = Some(v.to_string()),
                other => {
                    return Err(format!(
                        "unknown fault option {other:?} (rate, kinds, seed, delay-ms, match)"
                    ))
                }
            }
        }
        Ok(cfg)
    }
}

impl FromStr for FaultConfig {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultConfig::parse(s)
    }
}

/// One request the server received, with the fault injected into it (if any): lets tests
/// check what a client sent, e.g. that it retried only idempotent requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method (`GET`, `PUT`, ...).
    pub method: String,
    /// Request path without the query.
    pub path: String,
    /// The fault injected into this request.
    pub fault: Option<FaultKind>,
}

/// How many requests the journal keeps (the oldest are dropped), so a long-running server
/// (the demo, benchmarks) does not grow without bound.
const JOURNAL_CAP: usize = 10_000;

/// Live fault state of a server: random config plus queued one-shot faults.
#[derive(Debug)]
pub(crate) struct Faults {
    cfg: Option<FaultConfig>,
    rng: StdRng,
    queued: VecDeque<(FaultKind, Option<String>)>,
    injected: u64,
    journal: VecDeque<RequestRecord>,
}

impl Faults {
    /// Fault state from an optional config.
    pub fn new(cfg: Option<FaultConfig>) -> Faults {
        let seed = cfg.as_ref().map(|c| c.seed).unwrap_or(0);
        Faults {
            cfg,
            rng: StdRng::seed_from_u64(seed),
            queued: VecDeque::new(),
            injected: 0,
            journal: VecDeque::new(),
        }
    }

    /// Replaces the random config (and reseeds).
    pub fn set(&mut self, cfg: Option<FaultConfig>) {
        let injected = self.injected;
        let queued = std::mem::take(&mut self.queued);
        let journal = std::mem::take(&mut self.journal);
        *self = Faults::new(cfg);
        self.injected = injected;
        self.queued = queued;
        self.journal = journal;
    }

    /// Queues a one-shot fault for the next request whose path contains `path_contains`.
    pub fn queue(&mut self, kind: FaultKind, path_contains: Option<String>) {
        self.queued.push_back((kind, path_contains));
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> u64 {
        self.injected
    }

    /// Takes the journal of requests received since the last call.
    pub fn take_journal(&mut self) -> Vec<RequestRecord> {
        std::mem::take(&mut self.journal).into()
    }

    /// Decides the fault (if any) for a `method` request to `path` and records the request
    /// in the journal.
    pub fn decide_and_record(&mut self, method: &str, path: &str) -> Option<(FaultKind, Duration)> {
        let decided = self.decide(path);
        if self.journal.len() >= JOURNAL_CAP {
            self.journal.pop_front();
        }
        self.journal.push_back(RequestRecord {
            method: method.to_string(),
            path: path.to_string(),
            fault: decided.map(|d| d.0),
        });
        decided
    }

    /// Decides the fault (if any) for a request to `path`.
    pub fn decide(&mut self, path: &str) -> Option<(FaultKind, Duration)> {
        let delay = self
            .cfg
            .as_ref()
            .map(|c| c.delay)
            .unwrap_or(Duration::from_millis(1500));
        if let Some(i) = self
            .queued
            .iter()
            .position(|(k, m)| k.applies_to(path) && m.as_deref().is_none_or(|m| path.contains(m)))
        {
            let (kind, _) = self.queued.remove(i).expect("index from position");
            self.injected += 1;
            return Some((kind, delay));
        }
        let cfg = self.cfg.as_ref()?;
        if cfg
            .path_contains
            .as_deref()
            .is_some_and(|m| !path.contains(m))
        {
            return None;
        }
        let roll: f64 = self.rng.gen();
        if roll >= cfg.rate {
            return None;
        }
        let candidates: Vec<FaultKind> = cfg
            .kinds
            .iter()
            .copied()
            .filter(|k| k.applies_to(path))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let kind = candidates[self.rng.gen_range(0..candidates.len())];
        self.injected += 1;
        Some((kind, delay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_spec() {
        let c = FaultConfig::parse("rate=0.2,kinds=500|reset|delay|truncate,seed=7,delay-ms=10")
            .unwrap();
        assert_eq!(c.rate, 0.2);
        assert_eq!(c.kinds.len(), 4);
        assert_eq!(c.seed, 7);
        assert_eq!(c.delay, Duration::from_millis(10));
        assert!(FaultConfig::parse("rate=2").is_err());
        assert!(FaultConfig::parse("kinds=boom").is_err());
        assert!(FaultConfig::parse("nope").is_err());
    }

    #[test]
    fn decisions_are_reproducible_and_respect_rate() {
        let cfg = FaultConfig::parse("rate=0.5,kinds=500|reset,seed=3").unwrap();
        let mut a = Faults::new(Some(cfg.clone()));
        let mut b = Faults::new(Some(cfg));
        let da: Vec<_> = (0..100).map(|_| a.decide("/x").map(|d| d.0)).collect();
        let db: Vec<_> = (0..100).map(|_| b.decide("/x").map(|d| d.0)).collect();
        assert_eq!(da, db);
        let hits = da.iter().filter(|d| d.is_some()).count();
        assert!((30..70).contains(&hits), "{hits}");
        let mut none = Faults::new(Some(FaultConfig::parse("rate=0").unwrap()));
        assert!((0..50).all(|_| none.decide("/x").is_none()));
    }

    #[test]
    fn queued_faults_fire_once_on_matching_paths() {
        let mut f = Faults::new(None);
        f.queue(FaultKind::ApplyInterrupt, None);
        f.queue(FaultKind::Status500, Some("/waves/".into()));
        assert_eq!(
            f.decide("/ota/factories/a/waves/").map(|d| d.0),
            Some(FaultKind::Status500)
        );
        assert_eq!(f.decide("/ota/factories/a/waves/"), None);
        assert_eq!(
            f.decide("/r/root/updates/apply").map(|d| d.0),
            Some(FaultKind::ApplyInterrupt)
        );
        assert_eq!(f.injected(), 2);
    }
}
