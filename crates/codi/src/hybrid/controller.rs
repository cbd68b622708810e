//! The mode controller of hybrid decoding: one per sequence, no tensors. Each decoding step the
//! caller passes the [`Signals`] of the current next-token distribution and feeds what
//! [`Controller::decide`] returns. Two rules ([`SwitchRule`]):
//!
//! **Step rule** (the default, consistent with Phase 1): decisions happen only at CoT step
//! boundaries, where Phase 1 places latent runs: right after the question, after a written step
//! ends (see [`STEP_ENDS`]), and inside a run after every `latents_per_step` thoughts (one replaced
//! step, the count Phase 1 used). At a boundary the next step is latent when the model's
//! probability of `<bot>` reaches `bot_threshold`: Phase 2 trains that prediction where Phase 1's
//! entropy rule made a step latent (and `<eot>` where its run ended), so the controller follows
//! the entropy labels the model learned. A run feeds whole steps of thoughts, at most
//! `max_latent_steps` in all; after `<eot>` at least one step is written.
//!
//! **Entropy rule** (spec §7, after SwiReasoning as adapted by HybridLatent; mode 1 = explicit,
//! 0 = latent):
//! - start explicit; at t = 0 set `ref_H = H_0` (and write a token);
//! - for t ≥ 1: `stay += 1`; explicit → latent when `H_t > ref_H` and `stay ≥ window_e_to_l`;
//!   latent → explicit when `H_t < ref_H` and `stay ≥ window_l_to_e`; on a switch `stay = 0`,
//!   `ref_H = H_t`, `switch_count += 1`;
//! - entering latent mode feeds `<bot>`, leaving it feeds `<eot>`; the step after `<bot>` is always
//!   a thought and the step after `<eot>` always a token (markers are not decisions, so a run has
//!   at least one thought and text at least one token);
//! - after `max_latent_steps` consecutive thoughts the sequence is forced out (a switch like the
//!   others);
//! - with `switch_at_step_end`, latent mode is entered only right after a written step ends.
//!
//! Both rules: once `switch_count ≥ max_switch_count` no switch into latent mode happens again
//! (a sequence still latent finishes its run), and an answer trigger (`"The answer is"`,
//! `"####"`) in the written text locks explicit mode.
//!
//! Baselines through the same interface: all-explicit, all-latent (plain CODI: `<bot>`,
//! `num_latent` thoughts, `<eot>`, then text), random (each decision latent with probability
//! `1 − p`, under the same rule, caps and locks) and planned (the oracle: given per-step latent
//! flags, e.g. Phase 1's entropy rule applied to the gold CoT, under the step rule).

use latent_datasets::rng::SplitMix64;
use serde::{Deserialize, Serialize};

/// Texts that lock explicit mode once written.
pub const ANSWER_TRIGGERS: [&str; 2] = ["The answer is", "####"];

/// Texts that end a CoT step (GSM8k-Aug equations, GSM8k-Aug-NL sentences).
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

/// What the controller reads from the current next-token distribution.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Signals {
    /// Entropy (nats) over the base vocabulary.
    pub entropy: f32,
    /// Probability of `<bot>` over the whole vocabulary.
    pub p_bot: f32,
}

/// The decoding policies compared (`codi_eval --baseline_mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineMode {
    /// The adaptive controller ([`SwitchRule`]).
    #[default]
    Adaptive,
    /// Explicit CoT throughout.
    Explicit,
    /// Plain CODI: `<bot>`, `num_latent` thoughts, `<eot>`, then text.
    Latent,
    /// Each decision latent with probability `1 − p`.
    Random,
    /// The oracle: per-step latent flags given with [`Controller::with_plan`], under the step
    /// rule.
    Planned,
}

impl BaselineMode {
    /// Every mode, in table order.
    pub const ALL: [BaselineMode; 5] = [
        BaselineMode::Adaptive,
        BaselineMode::Explicit,
        BaselineMode::Latent,
        BaselineMode::Random,
        BaselineMode::Planned,
    ];

    /// The name used on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            BaselineMode::Adaptive => "adaptive",
            BaselineMode::Explicit => "explicit",
            BaselineMode::Latent => "latent",
            BaselineMode::Random => "random",
            BaselineMode::Planned => "planned",
        }
    }
}

impl std::str::FromStr for BaselineMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                format!("unknown mode {s:?} (adaptive, explicit, latent, random, planned)")
            })
    }
}

/// When the adaptive and random modes switch (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwitchRule {
    /// Decisions at step boundaries on the model's `<bot>` probability; whole steps of thoughts.
    #[default]
    Step,
    /// The spec's rule: switch on entropy rising or falling against a reference, any step.
    Entropy,
}

impl std::str::FromStr for SwitchRule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "step" => Ok(Self::Step),
            "entropy" => Ok(Self::Entropy),
            _ => Err(format!("unknown switch rule {s:?} (step, entropy)")),
        }
    }
}

/// Controller settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ControllerConfig {
    /// The policy.
    pub mode: BaselineMode,
    /// When the adaptive and random modes switch.
    #[serde(default)]
    pub rule: SwitchRule,
    /// Step rule: thoughts per latent step (Phase 1's `latents_per_step`).
    #[serde(default = "default_latents_per_step")]
    pub latents_per_step: usize,
    /// Step rule: `<bot>` probability at a boundary from which the next step is latent.
    #[serde(default = "default_bot_threshold")]
    pub bot_threshold: f32,
    /// Entropy rule: steps to stay explicit before a switch into latent mode (5).
    pub window_e_to_l: usize,
    /// Entropy rule: steps to stay latent before a switch back (0).
    pub window_l_to_e: usize,
    /// Switches after which explicit mode is locked (5).
    pub max_switch_count: usize,
    /// Most consecutive thoughts (6).
    pub max_latent_steps: usize,
    /// Thoughts of the all-latent baseline.
    pub num_latent: usize,
    /// Random baseline: probability that a decision is explicit.
    pub explicit_probability: f64,
    /// Random baseline: seed (each sequence draws from its own stream).
    pub seed: u64,
    /// Entropy rule: switch into latent mode only right after the written text ends a CoT step.
    #[serde(default)]
    pub switch_at_step_end: bool,
}

fn default_latents_per_step() -> usize {
    3
}

fn default_bot_threshold() -> f32 {
    0.5
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            mode: BaselineMode::Adaptive,
            rule: SwitchRule::Step,
            latents_per_step: default_latents_per_step(),
            bot_threshold: default_bot_threshold(),
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
    /// The text written so far ends a CoT step (as last observed).
    at_step_end: bool,
    /// A token that ends a step was written and no decision has been taken since.
    fresh_step_end: bool,
    /// The last action was `<bot>` or `<eot>`: this step is forced.
    after_marker: Option<Action>,
    /// Steps decided so far (step rule): the index of the next step.
    step_index: usize,
    plan: Vec<bool>,
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
            fresh_step_end: false,
            after_marker: None,
            step_index: 0,
            plan: Vec::new(),
            rng: SplitMix64::with_stream(config.seed, index),
            trace: String::new(),
        }
    }

    /// A planned-mode controller: step `k` of the CoT is latent when `plan[k]` (steps past the
    /// plan are explicit).
    pub fn with_plan(config: ControllerConfig, index: u64, plan: Vec<bool>) -> Self {
        Self {
            plan,
            ..Self::new(config, index)
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

    /// The reference entropy (entropy rule).
    pub fn ref_entropy(&self) -> f32 {
        self.ref_h
    }

    /// Steps since the last switch (entropy rule).
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

    /// Reports the text written so far (after each written token); an answer trigger locks
    /// explicit mode.
    pub fn observe_text(&mut self, text: &str) {
        let end = text.trim_end();
        self.at_step_end = STEP_ENDS.iter().any(|t| end.ends_with(t));
        self.fresh_step_end = self.at_step_end;
        if ANSWER_TRIGGERS.iter().any(|t| text.contains(t)) {
            self.answer_locked = true;
        }
    }

    /// The next action, given the signals of the current next-token distribution.
    pub fn decide(&mut self, signals: Signals) -> Action {
        let action = match self.config.mode {
            BaselineMode::Explicit => Action::Token,
            BaselineMode::Latent => self.all_latent(),
            BaselineMode::Planned => self.step_rule(signals),
            BaselineMode::Adaptive | BaselineMode::Random => match self.config.rule {
                SwitchRule::Step => self.step_rule(signals),
                SwitchRule::Entropy => match self.after_marker {
                    // A marker is not a decision: a run has a thought, text has a token.
                    Some(Action::Bot) => Action::Thought,
                    Some(_) => Action::Token,
                    None if self.config.mode == BaselineMode::Adaptive => {
                        self.adaptive(signals.entropy)
                    }
                    None => self.random(signals.entropy),
                },
            },
        };
        self.t += 1;
        if action == Action::Thought {
            self.latent_run += 1;
        }
        self.fresh_step_end = false;
        self.after_marker = matches!(action, Action::Bot | Action::Eot).then_some(action);
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

    /// Whether the next step should be latent (step rule): the `<bot>` probability, the random
    /// draw or the plan. Consumes the step's index.
    fn wants_latent_step(&mut self, signals: Signals) -> bool {
        let k = self.step_index;
        self.step_index += 1;
        match self.config.mode {
            BaselineMode::Planned => self.plan.get(k).copied().unwrap_or(false),
            BaselineMode::Random => {
                let draw = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                draw >= self.config.explicit_probability
            }
            _ => signals.p_bot >= self.config.bot_threshold,
        }
    }

    fn step_rule(&mut self, signals: Signals) -> Action {
        let per_step = self.config.latents_per_step.max(1);
        match self.mode {
            Mode::Explicit => {
                let boundary = self.t == 0 || self.fresh_step_end;
                if !boundary || self.locked() {
                    return Action::Token;
                }
                if self.wants_latent_step(signals) {
                    self.mode = Mode::Latent;
                    self.latent_run = 0;
                    self.switch_count += 1;
                    Action::Bot
                } else {
                    Action::Token
                }
            }
            Mode::Latent => {
                if self.latent_run == 0 || !self.latent_run.is_multiple_of(per_step) {
                    return Action::Thought;
                }
                // One latent step done: another, or back to text (whose first step is explicit).
                let room = self.latent_run + per_step <= self.config.max_latent_steps;
                if room && self.wants_latent_step(signals) {
                    Action::Thought
                } else {
                    if !room {
                        self.step_index += 1;
                    }
                    self.mode = Mode::Explicit;
                    self.switch_count += 1;
                    Action::Eot
                }
            }
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

    fn entropy_rule(window_e_to_l: usize, window_l_to_e: usize) -> ControllerConfig {
        ControllerConfig {
            rule: SwitchRule::Entropy,
            window_e_to_l,
            window_l_to_e,
            ..ControllerConfig::default()
        }
    }

    fn adaptive(window_e_to_l: usize, window_l_to_e: usize) -> Controller {
        Controller::new(entropy_rule(window_e_to_l, window_l_to_e), 0)
    }

    fn h(entropy: f32) -> Signals {
        Signals {
            entropy,
            p_bot: 0.0,
        }
    }

    /// Feeds `entropies` and returns the actions as a trace string.
    fn run(c: &mut Controller, entropies: &[f32]) -> String {
        entropies.iter().map(|&e| c.decide(h(e)).symbol()).collect()
    }

    /// Feeds `<bot>` probabilities and returns the actions as a trace string.
    fn run_p(c: &mut Controller, p_bot: &[f32]) -> String {
        p_bot
            .iter()
            .map(|&p| {
                c.decide(Signals {
                    entropy: 1.0,
                    p_bot: p,
                })
                .symbol()
            })
            .collect()
    }

    #[test]
    fn starts_explicit_and_sets_the_reference_at_t0() {
        let mut c = adaptive(0, 0);
        assert_eq!(c.mode(), Mode::Explicit);
        assert_eq!(c.decide(h(2.0)), Action::Token);
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
        // ref = 3.0. The step after <bot> is a thought whatever the entropy (not a decision);
        // then stay 1 (higher) → thought; stay 2, lower → switch out.
        assert_eq!(run(&mut c, &[2.0, 4.0, 2.5]), "zz]");
        assert_eq!(c.mode(), Mode::Explicit);
        assert_eq!((c.switch_count(), c.ref_entropy(), c.stay()), (2, 2.5, 0));
        // With window 0 the first lower entropy after the first thought leaves: no empty run.
        let mut c = adaptive(1, 0);
        assert_eq!(run(&mut c, &[1.0, 3.0, 2.9, 2.8]), "e[z]");
        // And the step after <eot> is a token even when the entropy would switch again.
        assert_eq!(run(&mut c, &[9.0, 9.5]), "e[");
    }

    #[test]
    fn forced_exit_after_max_latent_steps() {
        let mut c = Controller::new(
            ControllerConfig {
                max_latent_steps: 3,
                ..entropy_rule(1, 0)
            },
            0,
        );
        // Entropy keeps rising, so only the cap ends the run: 3 thoughts, then <eot>.
        assert_eq!(run(&mut c, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), "e[zzz]");
        assert_eq!((c.switch_count(), c.ref_entropy()), (2, 6.0));
        // A token, then the next run with a fresh budget.
        assert_eq!(run(&mut c, &[7.0, 8.0, 9.0, 10.0]), "e[zz");
    }

    #[test]
    fn max_switch_count_locks_explicit_mode() {
        let mut c = Controller::new(
            ControllerConfig {
                max_switch_count: 3,
                ..entropy_rule(1, 0)
            },
            0,
        );
        // Switches: [ (1), ] (2), [ (3): the budget is spent while latent, so the run ends by the
        // rules (entropy falls) and explicit mode is then locked whatever the entropy does.
        assert_eq!(run(&mut c, &[1.0, 2.0, 9.0, 1.0, 5.0, 6.0, 7.0]), "e[z]e[z");
        assert!(!c.locked());
        assert_eq!(run(&mut c, &[2.0]), "]");
        assert!(c.locked());
        assert_eq!(run(&mut c, &[9.0, 0.0, 9.0, 9.0]), "eeee");
        assert_eq!(c.switch_count(), 4);
    }

    #[test]
    fn answer_trigger_locks_explicit_mode() {
        for trigger in ANSWER_TRIGGERS {
            for config in [entropy_rule(1, 0), ControllerConfig::default()] {
                let mut c = Controller::new(config, 0);
                assert_eq!(run(&mut c, &[1.0]), "e");
                c.observe_text(&format!("<<3+4=7>> {trigger} 7."));
                assert!(c.locked());
                assert_eq!(run_p(&mut c, &[1.0, 1.0, 1.0]), "eee");
                assert_eq!(c.switch_count(), 0);
            }
        }
        // Other text does not lock.
        let mut c = adaptive(1, 0);
        c.decide(h(1.0));
        c.observe_text("the answer");
        assert_eq!(c.decide(h(2.0)), Action::Bot);
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
        assert_eq!(run_p(&mut explicit, &[1.0; 4]), "eeee");
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
        // Random under the entropy rule: p = 1 never leaves explicit mode, p = 0 alternates
        // between <bot> + thoughts up to the cap and <eot> + a token, until the switch budget
        // locks explicit mode.
        let random = |p: f64| {
            Controller::new(
                ControllerConfig {
                    mode: BaselineMode::Random,
                    explicit_probability: p,
                    max_latent_steps: 2,
                    max_switch_count: 4,
                    ..entropy_rule(5, 0)
                },
                3,
            )
        };
        assert_eq!(run(&mut random(1.0), &[1.0; 6]), "eeeeee");
        assert_eq!(run(&mut random(0.0), &[1.0; 12]), "e[zz]e[zz]ee");
        // The same seed and stream give the same trace; a mix of both modes at p = 0.5.
        let mixed = || {
            Controller::new(
                ControllerConfig {
                    mode: BaselineMode::Random,
                    max_switch_count: 100,
                    ..entropy_rule(5, 0)
                },
                3,
            )
        };
        let ta = run(&mut mixed(), &[1.0; 60]);
        assert_eq!(ta, run(&mut mixed(), &[1.0; 60]));
        assert!(ta.contains('z') && ta[1..].contains('e'), "{ta}");
    }

    #[test]
    fn entropy_rule_step_end_gating_delays_the_switch_into_latent_mode() {
        for mode in [BaselineMode::Adaptive, BaselineMode::Random] {
            let mut c = Controller::new(
                ControllerConfig {
                    mode,
                    explicit_probability: 0.0,
                    switch_at_step_end: true,
                    ..entropy_rule(1, 0)
                },
                0,
            );
            assert_eq!(c.decide(h(1.0)), Action::Token);
            c.observe_text("<< 3 + 4 =");
            // Higher entropy, window reached, but mid-step: stays explicit.
            assert_eq!(c.decide(h(2.0)), Action::Token, "{mode:?}");
            c.observe_text("<< 3 + 4 = 7 >>");
            assert_eq!(c.decide(h(2.0)), Action::Bot, "{mode:?}");
        }
    }

    fn step_rule(mode: BaselineMode, latents_per_step: usize, max: usize) -> ControllerConfig {
        ControllerConfig {
            mode,
            latents_per_step,
            max_latent_steps: max,
            ..ControllerConfig::default()
        }
    }

    #[test]
    fn step_rule_decides_at_boundaries_in_whole_steps() {
        let config = step_rule(BaselineMode::Adaptive, 2, 4);
        // Right after the question with p(<bot>) ≥ 0.5: a run; after each 2 thoughts a decision;
        // the cap (4) ends it.
        let mut c = Controller::new(config, 0);
        assert_eq!(run_p(&mut c, &[0.9; 6]), "[zzzz]");
        // After <eot> a step is written whatever p(<bot>) says, even if the text still ends a
        // step; mid-step no decision.
        assert_eq!(run_p(&mut c, &[0.9]), "e");
        c.observe_text("<<3+4=7>> <<7-");
        assert_eq!(run_p(&mut c, &[0.9]), "e");
        c.observe_text("<<3+4=7>> <<7-2=5>>");
        assert_eq!(run_p(&mut c, &[0.9]), "[");
        // Below the threshold at the boundary inside a run: <eot> after one step.
        assert_eq!(run_p(&mut c, &[0.9, 0.9, 0.2]), "zz]");
        assert_eq!(c.switch_count(), 4);
        // Below the threshold right after the question: text.
        let mut c = Controller::new(config, 0);
        assert_eq!(run_p(&mut c, &[0.49, 0.9, 0.9]), "eee");
        c.observe_text("<<3+4=7>>");
        assert_eq!(run_p(&mut c, &[0.5]), "[");
        // The threshold is the setting's.
        let mut c = Controller::new(
            ControllerConfig {
                bot_threshold: 0.1,
                ..config
            },
            0,
        );
        assert_eq!(run_p(&mut c, &[0.2]), "[");
    }

    #[test]
    fn planned_mode_follows_the_plan_step_by_step() {
        let config = step_rule(BaselineMode::Planned, 2, 6);
        let written = |c: &mut Controller, text: &str| {
            let a = c.decide(Signals::default()).symbol();
            c.observe_text(text);
            a
        };
        // Steps 0 latent, 1 explicit, 2 latent.
        let mut c = Controller::with_plan(config, 0, vec![true, false, true]);
        assert_eq!(run_p(&mut c, &[0.0; 4]), "[zz]");
        assert_eq!(written(&mut c, "<<"), 'e');
        assert_eq!(written(&mut c, "<<5-2=3>>"), 'e');
        assert_eq!(run_p(&mut c, &[0.0; 4]), "[zz]");
        // Consecutive latent steps form one run; steps past the plan are explicit.
        let mut c = Controller::with_plan(config, 0, vec![true, true]);
        assert_eq!(run_p(&mut c, &[1.0; 6]), "[zzzz]");
        // Step 0 explicit, 1 latent.
        let mut c = Controller::with_plan(config, 0, vec![false, true]);
        assert_eq!(written(&mut c, "<<4+1=5>>"), 'e');
        assert_eq!(run_p(&mut c, &[0.0; 4]), "[zz]");
        // The cap ends a run early; the step after it is explicit and the plan stays aligned.
        let capped = step_rule(BaselineMode::Planned, 2, 2);
        let mut c = Controller::with_plan(capped, 0, vec![true, true, false, true]);
        assert_eq!(run_p(&mut c, &[0.0; 4]), "[zz]");
        assert_eq!(written(&mut c, "<<9-2=7>>"), 'e');
        // That was step 1; step 2 is explicit, step 3 latent.
        assert_eq!(written(&mut c, "<<9-2=7>> <<7+1=8>>"), 'e');
        assert_eq!(run_p(&mut c, &[0.0]), "[");
    }

    #[test]
    fn step_rule_random_draws_per_step() {
        let random = |p: f64| {
            Controller::new(
                ControllerConfig {
                    explicit_probability: p,
                    ..step_rule(BaselineMode::Random, 3, 6)
                },
                5,
            )
        };
        assert_eq!(run_p(&mut random(1.0), &[1.0; 4]), "eeee");
        assert_eq!(run_p(&mut random(0.0), &[0.0; 8]), "[zzzzzz]");
        // Runs are whole steps: every run of thoughts has a multiple of 3.
        for seed in 0..20 {
            let mut c = Controller::new(
                ControllerConfig {
                    explicit_probability: 0.5,
                    ..step_rule(BaselineMode::Random, 3, 6)
                },
                seed,
            );
            let mut trace = String::new();
            for k in 0..6 {
                trace.push_str(&run_p(&mut c, &[0.0; 7]));
                c.observe_text(&"<<1+1=2>> ".repeat(k + 1));
            }
            // A run started at the last boundary ends within 8 more steps.
            trace.push_str(&run_p(&mut c, &[0.0; 9]));
            for run in trace.split(|ch| ch != 'z').filter(|r| !r.is_empty()) {
                assert_eq!(run.len() % 3, 0, "{trace}");
            }
        }
    }

    #[test]
    fn modes_parse() {
        for m in BaselineMode::ALL {
            assert_eq!(m.name().parse::<BaselineMode>(), Ok(m));
        }
        assert!("coconut".parse::<BaselineMode>().is_err());
        assert_eq!("entropy".parse::<SwitchRule>(), Ok(SwitchRule::Entropy));
        assert!("soft".parse::<SwitchRule>().is_err());
    }
}
