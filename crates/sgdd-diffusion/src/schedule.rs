//! The one masking-schedule convention, shared by training and decoding.
//!
//! Diffusion time `t ∈ (0, 1]` (1 = fully masked). Each token is masked with probability
//! `γ(t) = sin(π t / 2)`, i.e. `α_t = 1 − sin(π t / 2)` is the probability that it is still clean.
//! MaskGIT decodes in `T` steps; at the input of step `s` the masked fraction is about
//! `cos(π/2 · s/T)`, which is `γ(1 − s/T)`. Decoding gives the model the time whose expected masked
//! fraction is the row's actual one, `t = γ⁻¹(masked / maskable)` ([`MaskSchedule::time_of_fraction`]):
//! `1 − s/T` where the cosine schedule is followed exactly, and the true, lower fraction where the
//! counts are rounded down or at least one token is committed per step.
//! Training draws `t` uniformly from the 1000 discrete steps `k/1000`, so the masking rates seen
//! in training (mean `2/π ≈ 0.64`) are exactly the distribution MaskGIT's cosine schedule visits
//! under a uniform decoding progress `r = 1 − t`. (MDLM's cosine, `1 − cos(π t / 2)`, is the mirror
//! image with mean 0.36, and would train mostly on lightly masked inputs.)
//!
//! The weighted bound (MDLM) uses `w(t) = −α′_t / (1 − α_t) = (π/2) cot(π t / 2)` with `t ≥ 10⁻³`.

use std::f64::consts::FRAC_PI_2;

/// The schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaskSchedule {
    /// Discrete training steps (design 004: 1000).
    pub steps: usize,
    /// Smallest `t` used in the weight `w(t)`.
    pub t_min: f64,
}

impl Default for MaskSchedule {
    fn default() -> Self {
        Self {
            steps: 1000,
            t_min: 1e-3,
        }
    }
}

impl MaskSchedule {
    /// Probability `γ(t)` that a token is masked at time `t`.
    pub fn mask_prob(&self, t: f64) -> f64 {
        (FRAC_PI_2 * t.clamp(0.0, 1.0)).sin()
    }

    /// `α_t = 1 − γ(t)`.
    pub fn alpha(&self, t: f64) -> f64 {
        1.0 - self.mask_prob(t)
    }

    /// The ELBO weight `w(t) = −α′_t / (1 − α_t)`, `t` clamped to `t_min`.
    pub fn weight(&self, t: f64) -> f64 {
        let t = t.max(self.t_min);
        FRAC_PI_2 * (FRAC_PI_2 * t).cos() / (FRAC_PI_2 * t).sin()
    }

    /// The time of discrete step `k ∈ 1..=steps`.
    pub fn time_of(&self, k: usize) -> f64 {
        k as f64 / self.steps as f64
    }

    /// The time whose masking probability is `fraction`: `γ⁻¹(f) = (2/π)·asin(f)`, `f` clamped to
    /// `[0, 1]`. Decoding runs the model at the time of each row's actual masked fraction.
    pub fn time_of_fraction(&self, fraction: f64) -> f64 {
        fraction.clamp(0.0, 1.0).asin() / FRAC_PI_2
    }

    /// How many of `n` positions stay masked after decoding step `s` of `total`:
    /// `floor(n · cos(π/2 · (s+1)/T))` (0 after the last step).
    pub fn masked_after(&self, s: usize, total: usize, n: usize) -> usize {
        if s + 1 >= total {
            return 0;
        }
        let r = (s + 1) as f64 / total as f64;
        ((n as f64) * (FRAC_PI_2 * r).cos()).floor() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_and_decoding_share_the_convention() {
        let s = MaskSchedule::default();
        let total = 16;
        for step in 0..total {
            // Where the cosine schedule is followed exactly, the masked fraction at the input of
            // step `step` is γ(1 − step/T): its time is 1 − step/T.
            let fraction = (FRAC_PI_2 * step as f64 / total as f64).cos();
            let t = 1.0 - step as f64 / total as f64;
            assert!(
                (s.time_of_fraction(fraction) - t).abs() < 1e-9,
                "step {step}"
            );
            assert!((s.mask_prob(s.time_of_fraction(fraction)) - fraction).abs() < 1e-12);
        }
        assert_eq!(s.time_of_fraction(1.0), 1.0);
        assert_eq!(s.time_of_fraction(0.0), 0.0);
        assert_eq!(s.mask_prob(1.0), 1.0);
        assert_eq!(s.masked_after(15, 16, 10), 0);
        assert_eq!(s.masked_after(0, 16, 100), 99);
        assert_eq!(s.masked_after(7, 16, 100), 70); // floor(100 · cos(π/4)) = 70
                                                    // Mean masking rate over the 1000 training steps ≈ 2/π (MaskGIT's, not MDLM's 1 − 2/π).
        let mean: f64 = (1..=1000).map(|k| s.mask_prob(s.time_of(k))).sum::<f64>() / 1000.0;
        assert!((mean - 2.0 / std::f64::consts::PI).abs() < 1e-3, "{mean}");
    }

    #[test]
    fn weight_is_minus_alpha_prime_over_one_minus_alpha() {
        let s = MaskSchedule::default();
        for t in [0.01, 0.3, 0.5, 0.9] {
            let h = 1e-6;
            let d_alpha = (s.alpha(t + h) - s.alpha(t - h)) / (2.0 * h);
            let w = -d_alpha / (1.0 - s.alpha(t));
            assert!(
                (w - s.weight(t)).abs() < 1e-5 * w.max(1.0),
                "t={t}: {w} vs {}",
                s.weight(t)
            );
        }
        assert_eq!(s.weight(0.0), s.weight(1e-3));
    }
}
