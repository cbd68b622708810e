//! The mode controller of hybrid decoding (spec §7, after SwiReasoning as adapted by HybridLatent):
//! one per sequence, no tensors. Each decoding step the caller passes the entropy of the current
//! next-token distribution and feeds what [`Controller::decide`] returns.
//!
//! Adaptive rules (mode 1 = explicit, 0 = latent):
//! - start explicit; at t = 0 set `ref_H = H_0` (and write a token);
//! - for t ≥ 1: `stay += 1`; explicit → latent when `H_t > ref_H` and `stay ≥ window_e_to_l`;
//!   latent → explicit when `H_t < ref_H` and `stay ≥ window_l_to_e`; on a switch `stay = 0`,
//!   `ref_H = H_t`, `switch_count += 1`;
//! - entering latent mode feeds `<bot>` (the thoughts then start from its hidden state), leaving it
//!   feeds `<eot>`;
//! - after `max_latent_steps` consecutive thoughts the sequence is forced out (a switch like the
//!   others: `stay = 0`, `ref_H = H_t`, `switch_count += 1`);
//! - once `switch_count ≥ max_switch_count` no switch into latent mode happens again: explicit mode
//!   is locked as soon as the sequence is explicit (a sequence still latent finishes its run by the
//!   rules above);
//! - an answer trigger (`"The answer is"`, `"####"`) in the written text locks explicit mode.
//!
//! Baselines through the same interface: all-explicit, all-latent (plain CODI: `<bot>`,
//! `num_latent` thoughts, `<eot>`, then text) and random (each step explicit with probability `p`,
//! under the same `max_latent_steps`, switch budget and answer lock).

use latent_datasets::rng::SplitMix64;
use serde::{Deserialize, Serialize};

/// Texts that lock explicit mode once written.
pub const ANSWER_TRIGGERS: [&str; 2] = ["The answer is", "####"];

/// Texts that end a CoT step (GSM8k-Aug equations, GSM8k-Aug-NL sentences), for
/// [`ControllerConfig::switch_at_step_end`].
pub const STEP_ENDS: [&str; 2] = [">>", "."];

/// Reasoning mode of a sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Mode {
    /// Writing tokens.
    Explicit,
    /// Feeding continuous thoughts.
    Latent,
}

/// What the caller feeds next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Action {
    /// The arg-max token of the current distribution (explicit text).
    Token,
    /// `<bot>`: enter latent mode.
    Bot,
    /// A continuous thought: the projection of the current hidden state.
    Thought,
    /// `<eot>`: leave latent mode.
    Eot,
}

impl Action {
    /// One character for traces: `e` token, `[` `<bot>`, `z` thought, `]` `<eot>`.
    pub fn symbol(self) -> char {
        match self {
            Action::Token => 'e',
            Action::Bot => '[',
            Action::Thought => 'z',
            Action::Eot => ']',
        }
    }
}

/// The decoding policies compared (`codi_eval --baseline_mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineMode {
    /// The entropy controller.
    #[default]
    Adaptive,
    /// Explicit CoT throughout.
    Explicit,
    /// Plain CODI: `<bot>`, `num_latent` thoughts, `<eot>`, then text.
    Latent,
    /// Each step explicit with probability `p`.
    Random,
}

impl BaselineMode {
    /// Every mode, in table order.
    pub const ALL: [BaselineMode; 4] = [
        BaselineMode::Adaptive,
        BaselineMode::Explicit,
        BaselineMode::Latent,
        BaselineMode::Random,
    ];

    /// The name used on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            BaselineMode::Adaptive => "adaptive",
            BaselineMode::Explicit => "explicit",
            BaselineMode::Latent => "latent",
            BaselineMode::Random => "random",
        }
    }
}

impl std::str::FromStr for BaselineMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("unknown mode {s:?} (adaptive, explicit, latent, random)"))
    }
}

/// Controller settings (defaults of the spec).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ControllerConfig {
    /// The policy.
    pub mode: BaselineMode,
    /// Steps to stay explicit before a switch into latent mode (5).
    pub window_e_to_l: usize,
    /// Steps to stay latent before a switch back (0).
    pub window_l_to_e: usize,
    /// Switches after which explicit mode is locked (5).
    pub max_switch_count: usize,
    /// Consecutive thoughts after which latent mode is left (6).
    pub max_latent_steps: usize,
    /// Thoughts of the all-latent baseline.
    pub num_latent: usize,
    /// Random baseline: probability that a step is explicit.
    pub explicit_probability: f64,
    /// Random baseline: seed (each sequence draws from its own stream).
    pub seed: u64,
    /// An extension, off by default (the spec has no such rule): switch into latent mode only
    /// right after the written text ends a CoT step (see [`STEP_ENDS`]), where Phase 1 places
    /// latent runs. Applies to the adaptive and random modes.
    #[serde(default)]
    pub switch_at_step_end: bool,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            mode: BaselineMode::Adaptive,
            window_e_to_l: 5,
            window_l_to_e: 0,
            max_switch_count: 5,
            max_latent_steps: 6,
            num_latent: 6,
            explicit_probability: 0.5,
            seed: 11,
            switch_at_step_end: false,
        }
    }
}

/// The state of one sequence.
#[derive(Debug, Clone)]
pub struct Controller {
    config: ControllerConfig,
    mode: Mode,
    t: usize,
    ref_h: f32,
    stay: usize,
    switch_count: usize,
    latent_run: usize,
    answer_locked: bool,
    at_step_end: bool,
    rng: SplitMix64,
    trace: String,
}

impl Controller {
    /// A controller for sequence `index` of an evaluation (the index picks the random stream).
    pub fn new(config: ControllerConfig, index: u64) -> Self {
        Self {
            config,
            mode: Mode::Explicit,
            t: 0,
            ref_h: 0.0,
            stay: 0,
            switch_count: 0,
            latent_run: 0,
            answer_locked: false,
            at_step_end: false,
            rng: SplitMix64::with_stream(config.seed, index),
            trace: String::new(),
        }
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Mode switches so far (forced exits included).
    pub fn switch_count(&self) -> usize {
        self.switch_count
    }

    /// The reference entropy.
    pub fn ref_entropy(&self) -> f32 {
        self.ref_h
    }

    /// Steps since the last switch.
    pub fn stay(&self) -> usize {
        self.stay
    }

    /// Whether no switch can happen any more.
    pub fn locked(&self) -> bool {
        self.mode == Mode::Explicit
            && (self.answer_locked || self.switch_count >= self.config.max_switch_count)
    }

    /// Every action so far, one [`Action::symbol`] each.
    pub fn trace(&self) -> &str {
        &self.trace
    }

    /// Reports the text written so far; an answer trigger locks explicit mode.
    pub fn observe_text(&mut self, text: &str) {
        let end = text.trim_end();
        self.at_step_end = STEP_ENDS.iter().any(|t| end.ends_with(t));
        if ANSWER_TRIGGERS.iter().any(|t| text.contains(t)) {
            self.answer_locked = true;
        }
    }

    /// The next action, given the entropy `H_t` of the current next-token distribution.
    pub fn decide(&mut self, entropy: f32) -> Action {
        let action = match self.config.mode {
            BaselineMode::Explicit => Action::Token,
            BaselineMode::Latent => self.all_latent(),
            BaselineMode::Adaptive => self.adaptive(entropy),
            BaselineMode::Random => self.random(entropy),
        };
        self.t += 1;
        if action == Action::Thought {
            self.latent_run += 1;
        }
        self.trace.push(action.symbol());
        action
    }

    fn all_latent(&mut self) -> Action {
        match (self.mode, self.t) {
            (Mode::Explicit, 0) => {
                self.mode = Mode::Latent;
                self.switch_count += 1;
                Action::Bot
            }
            (Mode::Latent, _) if self.latent_run < self.config.num_latent => Action::Thought,
            (Mode::Latent, _) => {
                self.mode = Mode::Explicit;
                self.switch_count += 1;
                self.answer_locked = true;
                Action::Eot
            }
            (Mode::Explicit, _) => Action::Token,
        }
    }

    /// Applies a switch at entropy `h` and returns the token that marks it.
    fn switch(&mut self, h: f32) -> Action {
        self.stay = 0;
        self.ref_h = h;
        self.switch_count += 1;
        match self.mode {
            Mode::Explicit => {
                self.mode = Mode::Latent;
                self.latent_run = 0;
                Action::Bot
            }
            Mode::Latent => {
                self.mode = Mode::Explicit;
                Action::Eot
            }
        }
    }

    /// Whether a switch into latent mode may happen here (always, unless gated on step ends).
    fn may_enter_latent(&self) -> bool {
        !self.config.switch_at_step_end || self.at_step_end
    }

    /// What the current mode feeds when it stays.
    fn stay_action(&self) -> Action {
        match self.mode {
            Mode::Explicit => Action::Token,
            Mode::Latent => Action::Thought,
        }
    }

    fn adaptive(&mut self, h: f32) -> Action {
        if self.t == 0 {
            self.ref_h = h;
            return Action::Token;
        }
        self.stay += 1;
        if self.locked() {
            return Action::Token;
        }
        match self.mode {
            Mode::Explicit
                if h > self.ref_h
                    && self.stay >= self.config.window_e_to_l
                    && self.may_enter_latent() =>
            {
                self.switch(h)
            }
            Mode::Latent
                if self.latent_run >= self.config.max_latent_steps
                    || (h < self.ref_h && self.stay >= self.config.window_l_to_e) =>
            {
                self.switch(h)
            }
            _ => self.stay_action(),
        }
    }

    fn random(&mut self, h: f32) -> Action {
        if self.t == 0 {
            return Action::Token;
        }
        self.stay += 1;
        if self.locked() {
            return Action::Token;
        }
        let draw = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let want = if draw < self.config.explicit_probability {
            Mode::Explicit
        } else {
            Mode::Latent
        };
        let forced = self.mode == Mode::Latent && self.latent_run >= self.config.max_latent_steps;
        let blocked = self.mode == Mode::Explicit && !self.may_enter_latent();
        if forced || (want != self.mode && !blocked) {
            self.switch(h)
        } else {
            self.stay_action()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adaptive(window_e_to_l: usize, window_l_to_e: usize) -> Controller {
        Controller::new(
            ControllerConfig {
                window_e_to_l,
                window_l_to_e,
                ..ControllerConfig::default()
            },
            0,
        )
    }

    /// Feeds `entropies` and returns the actions as a trace string.
    fn run(c: &mut Controller, entropies: &[f32]) -> String {
        entropies.iter().map(|&h| c.decide(h).symbol()).collect()
    }

    #[test]
    fn starts_explicit_and_sets_the_reference_at_t0() {
        let mut c = adaptive(0, 0);
        assert_eq!(c.mode(), Mode::Explicit);
        assert_eq!(c.decide(2.0), Action::Token);
        assert_eq!(c.ref_entropy(), 2.0);
        assert_eq!((c.stay(), c.switch_count()), (0, 0));
        // Equal entropy never switches (strict comparisons).
        assert_eq!(run(&mut c, &[2.0, 2.0]), "ee");
        assert_eq!(c.stay(), 2);
    }

    #[test]
    fn explicit_to_latent_waits_for_the_window() {
        let mut c = adaptive(3, 0);
        // t = 0 sets ref 1.0; t = 1, 2 exceed it but stay is 1, 2 < 3; t = 3 switches.
        assert_eq!(run(&mut c, &[1.0, 5.0, 5.0, 5.0]), "eee[");
        assert_eq!(c.mode(), Mode::Latent);
        assert_eq!((c.stay(), c.switch_count(), c.ref_entropy()), (0, 1, 5.0));
        // Lower entropy than the reference but before the window: stays explicit.
        let mut c = adaptive(3, 0);
        assert_eq!(run(&mut c, &[1.0, 0.5, 0.5, 0.5, 0.5]), "eeeee");
    }

    #[test]
    fn latent_to_explicit_needs_lower_entropy_and_its_window() {
        let mut c = adaptive(1, 2);
        assert_eq!(run(&mut c, &[1.0, 3.0]), "e[");
        // ref = 3.0. t: stay 1 (lower, but window 2 not reached) → thought; stay 2 → higher → thought;
        // stay 3, lower → switch out.
        assert_eq!(run(&mut c, &[2.0, 4.0, 2.5]), "zz]");
        assert_eq!(c.mode(), Mode::Explicit);
        assert_eq!((c.switch_count(), c.ref_entropy(), c.stay()), (2, 2.5, 0));
        // With window 0 the first lower entropy leaves at once.
        let mut c = adaptive(1, 0);
        assert_eq!(run(&mut c, &[1.0, 3.0, 2.9]), "e[]");
    }

    #[test]
    fn forced_exit_after_max_latent_steps() {
        let mut c = Controller::new(
            ControllerConfig {
                window_e_to_l: 1,
                max_latent_steps: 3,
                ..ControllerConfig::default()
            },
            0,
        );
        // Entropy keeps rising, so only the cap ends the run: 3 thoughts, then <eot>.
        assert_eq!(run(&mut c, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), "e[zzz]");
        assert_eq!((c.switch_count(), c.ref_entropy()), (2, 6.0));
        // The next run gets a fresh budget.
        assert_eq!(run(&mut c, &[7.0, 8.0, 9.0]), "[zz");
    }

    #[test]
    fn max_switch_count_locks_explicit_mode() {
        let mut c = Controller::new(
            ControllerConfig {
                window_e_to_l: 1,
                max_switch_count: 3,
                ..ControllerConfig::default()
            },
            0,
        );
        // Switches: [ (1), ] (2), [ (3): the budget is spent while latent, so the run ends by the
        // rules (entropy falls) and explicit mode is then locked whatever the entropy does.
        assert_eq!(run(&mut c, &[1.0, 2.0, 1.0, 3.0, 4.0]), "e[][z");
        assert!(!c.locked());
        assert_eq!(run(&mut c, &[2.0]), "]");
        assert!(c.locked());
        assert_eq!(run(&mut c, &[9.0, 0.0, 9.0, 9.0]), "eeee");
        assert_eq!(c.switch_count(), 4);
    }

    #[test]
    fn answer_trigger_locks_explicit_mode() {
        for trigger in ANSWER_TRIGGERS {
            let mut c = adaptive(1, 0);
            assert_eq!(run(&mut c, &[1.0]), "e");
            c.observe_text(&format!("3 + 4 = 7 {trigger}"));
            assert!(c.locked());
            assert_eq!(run(&mut c, &[5.0, 9.0, 20.0]), "eee");
            assert_eq!(c.switch_count(), 0);
        }
        // Other text does not lock.
        let mut c = adaptive(1, 0);
        c.decide(1.0);
        c.observe_text("the answer");
        assert_eq!(c.decide(2.0), Action::Bot);
    }

    #[test]
    fn baselines() {
        let mut explicit = Controller::new(
            ControllerConfig {
                mode: BaselineMode::Explicit,
                ..ControllerConfig::default()
            },
            0,
        );
        assert_eq!(run(&mut explicit, &[1.0, 9.0, 0.0, 9.0]), "eeee");
        let mut latent = Controller::new(
            ControllerConfig {
                mode: BaselineMode::Latent,
                num_latent: 3,
                ..ControllerConfig::default()
            },
            0,
        );
        assert_eq!(run(&mut latent, &[1.0; 8]), "[zzz]eee");
        assert!(latent.locked());
        // Random: p = 1 never leaves explicit mode, p = 0 alternates between <bot> + thoughts up to
        // the cap and <eot>, until the switch budget locks explicit mode.
        let random = |p: f64| {
            Controller::new(
                ControllerConfig {
                    mode: BaselineMode::Random,
                    explicit_probability: p,
                    max_latent_steps: 2,
                    max_switch_count: 4,
                    ..ControllerConfig::default()
                },
                3,
            )
        };
        assert_eq!(run(&mut random(1.0), &[1.0; 6]), "eeeeee");
        assert_eq!(run(&mut random(0.0), &[1.0; 12]), "e[zz][zz]eee");
        // The same seed and stream give the same trace; a mix of both modes at p = 0.5.
        let mixed = || {
            Controller::new(
                ControllerConfig {
                    mode: BaselineMode::Random,
                    max_switch_count: 100,
                    ..ControllerConfig::default()
                },
                3,
            )
        };
        let ta = run(&mut mixed(), &[1.0; 60]);
        assert_eq!(ta, run(&mut mixed(), &[1.0; 60]));
        assert!(ta.contains('z') && ta[1..].contains('e'), "{ta}");
    }

    #[test]
    fn step_end_gating_delays_the_switch_into_latent_mode() {
        let gated = |mode| {
            Controller::new(
                ControllerConfig {
                    mode,
                    window_e_to_l: 1,
                    explicit_probability: 0.0,
                    switch_at_step_end: true,
                    ..ControllerConfig::default()
                },
                0,
            )
        };
        for mode in [BaselineMode::Adaptive, BaselineMode::Random] {
            let mut c = gated(mode);
            assert_eq!(c.decide(1.0), Action::Token);
            c.observe_text("<< 3 + 4 =");
            // Higher entropy, window reached, but mid-step: stays explicit.
            assert_eq!(c.decide(2.0), Action::Token, "{mode:?}");
            c.observe_text("<< 3 + 4 = 7 >>");
            assert_eq!(c.decide(2.0), Action::Bot, "{mode:?}");
        }
    }

    #[test]
    fn modes_parse() {
        for m in BaselineMode::ALL {
            assert_eq!(m.name().parse::<BaselineMode>(), Ok(m));
        }
        assert!("coconut".parse::<BaselineMode>().is_err());
    }
}
