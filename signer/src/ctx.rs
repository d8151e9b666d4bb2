//! What every command runs with besides its arguments: [`Ctx`].
//!
//! The entry point ([`crate::run`]) is the only place that reads the clock, opens the
//! terminal and takes the operating system's random number generator; every command below
//! it gets them here. So a test runs any command at a fixed time, with scripted answers
//! and captured output, and with a seeded generator that makes its keys reproducible.

use rand_core::CryptoRngCore;
use shared::metadata::Timestamp;

use crate::state::StateDir;
use crate::ui::Ui;

/// The state, output, time and randomness of one command run.
pub struct Ctx<'a> {
    /// The signer state directory (pins, memory, identities, cosigners, audit log).
    pub state: StateDir,
    /// Output and confirmation: everything a command prints goes through it.
    pub ui: &'a mut Ui,
    /// The time of this run: audit records, pins, expiry checks, key owners and sheets all
    /// carry this one instant.
    pub now: Timestamp,
    /// The random number generator for everything this run generates: keys (in tarballs),
    /// the age and signing identities, Shamir shares and split-set ids, temporary token
    /// object ids.
    pub rng: &'a mut dyn CryptoRngCore,
}

impl<'a> Ctx<'a> {
    /// A context for a run in `state` at `now`, talking through `ui`, drawing randomness
    /// from `rng`.
    pub fn new(
        state: StateDir,
        ui: &'a mut Ui,
        now: Timestamp,
        rng: &'a mut dyn CryptoRngCore,
    ) -> Ctx<'a> {
        Ctx {
            state,
            ui,
            now,
            rng,
        }
    }
}

/// Contexts for the unit tests: no terminal, `--yes`, a fixed time, a seeded generator.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::Path;

    use rand::SeedableRng as _;

    use super::*;

    /// The fixed time of test runs.
    pub(crate) fn test_time() -> Timestamp {
        Timestamp::parse("2026-03-01T10:20:30Z").expect("a valid time")
    }

    /// Runs `f` with a context in the state directory `state` (no terminal, `--yes`,
    /// [`test_time`], a generator seeded with a constant); returns its result and what it
    /// printed.
    pub(crate) fn run_in<T>(state: &Path, f: impl FnOnce(&mut Ctx<'_>) -> T) -> (T, String) {
        let (mut ui, out) = Ui::scripted("", false, true);
        let r = run_with(state, &mut ui, f);
        (r, out.text())
    }

    /// Runs `f` with a context in `state` talking through `ui` (e.g. a scripted terminal),
    /// at [`test_time`], with a generator seeded with a constant.
    pub(crate) fn run_with<T>(state: &Path, ui: &mut Ui, f: impl FnOnce(&mut Ctx<'_>) -> T) -> T {
        let mut rng = rand::rngs::StdRng::seed_from_u64(20);
        let mut ctx = Ctx::new(StateDir::at(state), ui, test_time(), &mut rng);
        f(&mut ctx)
    }
}
