//! Choosing the next token from logits: greedy, temperature, top-k, top-p, with a seeded RNG so the
//! same seed gives the same text.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// How the next token is chosen. A temperature of 0 means greedy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingConfig {
    /// Softmax temperature; 0 (or below) selects the arg-max.
    pub temperature: f32,
    /// Keep only the k most likely tokens (0 = off).
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches p (1 = off).
    pub top_p: f32,
    /// Seed of the sampling RNG.
    pub seed: u64,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self::greedy()
    }
}

impl SamplingConfig {
    /// Arg-max decoding.
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
        }
    }

    /// Whether this is arg-max decoding.
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0
    }
}

/// Softmax of `logits` (computed in f64 for stability).
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let exps: Vec<f64> = logits.iter().map(|&l| (l as f64 - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| (e / sum) as f32).collect()
}

/// `softmax(logits)[id]`, computed the same way without building the vector.
pub fn probability_of(logits: &[f32], id: usize) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    ((logits[id] as f64 - max).exp() / sum) as f32
}

/// Shannon entropy (nats) of a probability vector.
pub fn entropy(probs: &[f32]) -> f32 {
    probs
        .iter()
        .filter(|&&p| p > 0.0)
        .map(|&p| -(p as f64) * (p as f64).ln())
        .sum::<f64>() as f32
}

/// Index of the largest value (the first one on ties, as `torch.argmax`).
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

/// A next-token distribution over the vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenDistribution {
    /// Probabilities `[vocab]` (zero outside the kept ids).
    pub probs: Vec<f32>,
    /// The ids top-k / top-p kept, most likely first; `None` when every id is kept.
    pub kept: Option<Vec<u32>>,
}

/// Draws tokens according to a [`SamplingConfig`].
#[derive(Debug, Clone)]
pub struct Sampler {
    config: SamplingConfig,
    rng: StdRng,
}

impl Sampler {
    /// A sampler seeded with `config.seed`.
    pub fn new(config: SamplingConfig) -> Self {
        let rng = StdRng::seed_from_u64(config.seed);
        Self { config, rng }
    }

    /// The configuration.
    pub fn config(&self) -> &SamplingConfig {
        &self.config
    }

    /// The distribution a token is drawn from: softmax of `logits / temperature`, restricted to top-k
    /// then top-p (transformers' order) and renormalised. For greedy decoding, the plain softmax.
    pub fn distribution(&self, logits: &[f32]) -> Vec<f32> {
        self.distribution_with_support(logits).probs
    }

    /// [`Sampler::distribution`] with the ids truncation kept (`None` when top-k and top-p removed
    /// nothing, or for greedy decoding).
    pub fn distribution_with_support(&self, logits: &[f32]) -> TokenDistribution {
        let c = &self.config;
        if c.is_greedy() {
            return TokenDistribution {
                probs: softmax(logits),
                kept: None,
            };
        }
        let scaled: Vec<f32> = logits.iter().map(|l| l / c.temperature).collect();
        let mut probs = softmax(&scaled);
        let v = probs.len();
        let top_k = if c.top_k > 0 { c.top_k.min(v) } else { v };
        if top_k == v && c.top_p >= 1.0 {
            return TokenDistribution { probs, kept: None };
        }
        // Most likely first, ties by id (a stable order, as a stable sort gives).
        let by_prob = |a: &usize, b: &usize| probs[*b].total_cmp(&probs[*a]).then(a.cmp(b));
        let mut order: Vec<usize> = (0..v).collect();
        if top_k < v {
            order.select_nth_unstable_by(top_k - 1, by_prob);
            order.truncate(top_k);
        }
        order.sort_by(by_prob);
        let mut keep = order.len();
        if c.top_p < 1.0 {
            let total: f32 = order.iter().map(|&i| probs[i]).sum();
            let mut cumulative = 0.0;
            let mut n = 0;
            for &i in &order {
                n += 1;
                cumulative += probs[i] / total;
                if cumulative >= c.top_p {
                    break;
                }
            }
            keep = n.max(1);
        }
        order.truncate(keep);
        let mut kept_probs = vec![0.0; v];
        for &i in &order {
            kept_probs[i] = probs[i];
        }
        // Summed in id order, as over the whole masked vector.
        let sum: f32 = kept_probs.iter().sum();
        kept_probs.iter_mut().for_each(|p| *p /= sum);
        probs = kept_probs;
        TokenDistribution {
            probs,
            kept: Some(order.into_iter().map(|i| i as u32).collect()),
        }
    }

    /// The next token for `logits` `[vocab]`.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.config.is_greedy() {
            return argmax(logits) as u32;
        }
        let probs = self.distribution(logits);
        self.draw(&probs)
    }

    /// Draws an index from a probability vector.
    pub fn draw(&mut self, probs: &[f32]) -> u32 {
        let target: f32 = self.rng.random::<f32>();
        let mut cumulative = 0.0;
        let mut last = 0;
        for (i, &p) in probs.iter().enumerate() {
            if p > 0.0 {
                cumulative += p;
                last = i;
                if target < cumulative {
                    return i as u32;
                }
            }
        }
        last as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_first_maximum() {
        let mut s = Sampler::new(SamplingConfig::greedy());
        assert_eq!(s.sample(&[0.1, 2.0, 2.0, -1.0]), 1);
    }

    #[test]
    fn top_k_and_top_p_restrict_the_support() {
        let logits = [1.0, 3.0, 2.0, 0.0];
        let top_k = Sampler::new(SamplingConfig {
            temperature: 1.0,
            top_k: 2,
            top_p: 1.0,
            seed: 0,
        });
        let p = top_k.distribution(&logits);
        assert_eq!(p[0], 0.0);
        assert_eq!(p[3], 0.0);
        assert!((p[1] + p[2] - 1.0).abs() < 1e-6 && p[1] > p[2]);
        // softmax([1,3,2,0]) = [.087, .644, .237, .032]: top-p 0.7 keeps tokens 1 and 2.
        let top_p = Sampler::new(SamplingConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.7,
            seed: 0,
        });
        let p = top_p.distribution(&logits);
        assert_eq!((p[0], p[3]), (0.0, 0.0));
        assert!(p[1] > 0.0 && p[2] > 0.0);
        let top_p = Sampler::new(SamplingConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.5,
            seed: 0,
        });
        assert_eq!(
            top_p
                .distribution(&logits)
                .iter()
                .filter(|&&x| x > 0.0)
                .count(),
            1
        );
    }

    #[test]
    fn same_seed_same_draws() {
        let config = SamplingConfig {
            temperature: 0.8,
            top_k: 0,
            top_p: 0.95,
            seed: 7,
        };
        let logits: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin()).collect();
        let draw = |config: SamplingConfig| {
            let mut s = Sampler::new(config);
            (0..20).map(|_| s.sample(&logits)).collect::<Vec<_>>()
        };
        assert_eq!(draw(config.clone()), draw(config.clone()));
        assert_ne!(
            draw(config.clone()),
            draw(SamplingConfig { seed: 8, ..config })
        );
    }

    #[test]
    fn entropy_of_uniform_is_log_n() {
        assert!((entropy(&[0.25; 4]) - 4f32.ln()).abs() < 1e-6);
        assert_eq!(entropy(&[1.0, 0.0]), 0.0);
    }
}
