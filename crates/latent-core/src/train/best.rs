//! Tracking the best value of a named metric, in the right direction (a loss starts at +∞).

use serde::{Deserialize, Serialize};

/// Whether smaller or larger is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Losses, perplexities.
    Minimize,
    /// Accuracies, BLEU.
    Maximize,
}

/// The best value seen so far of one metric. In JSON a tracker that has seen nothing yet writes
/// its value as `null` (JSON has no ±∞) and reads back as fresh.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "BestMetricRecord", into = "BestMetricRecord")]
pub struct BestMetric {
    /// The metric key, exactly as logged.
    pub key: String,
    /// Direction of improvement.
    pub direction: Direction,
    /// Best value so far (+∞ for a fresh minimised metric, −∞ for a maximised one).
    pub value: f64,
}

/// [`BestMetric`] as stored: the value `None` until one was seen.
#[derive(Serialize, Deserialize)]
struct BestMetricRecord {
    key: String,
    direction: Direction,
    value: Option<f64>,
}

impl From<BestMetric> for BestMetricRecord {
    fn from(b: BestMetric) -> Self {
        Self {
            value: b.value.is_finite().then_some(b.value),
            key: b.key,
            direction: b.direction,
        }
    }
}

impl From<BestMetricRecord> for BestMetric {
    fn from(r: BestMetricRecord) -> Self {
        let mut best = BestMetric::new(r.key, r.direction);
        if let Some(v) = r.value {
            best.value = v;
        }
        best
    }
}

impl BestMetric {
    /// A tracker that has seen nothing yet.
    pub fn new(key: impl Into<String>, direction: Direction) -> Self {
        let value = match direction {
            Direction::Minimize => f64::INFINITY,
            Direction::Maximize => f64::NEG_INFINITY,
        };
        Self {
            key: key.into(),
            direction,
            value,
        }
    }

    /// Records `value`; returns whether it is a new best (NaN never is).
    pub fn update(&mut self, value: f64) -> bool {
        let better = match self.direction {
            Direction::Minimize => value < self.value,
            Direction::Maximize => value > self.value,
        };
        if better {
            self.value = value;
        }
        better
    }
}

impl BestMetric {
    /// Records the value logged under this tracker's key (the compared key is the logged one);
    /// an error lists the logged keys when it is missing.
    pub fn update_from(&mut self, logged: &[(String, f64)]) -> crate::Result<bool> {
        match logged.iter().find(|(k, _)| *k == self.key) {
            Some((_, v)) => Ok(self.update(*v)),
            None => Err(crate::CoreError::Shape(format!(
                "best metric `{}` is not among the logged metrics {:?}",
                self.key,
                logged.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_the_logged_key_only() {
        let mut best = BestMetric::new("valid/loss", Direction::Minimize);
        let logged = vec![
            ("valid/ppl".to_string(), 1.0),
            ("valid/loss".to_string(), 2.0),
        ];
        assert!(best.update_from(&logged).unwrap());
        assert_eq!(best.value, 2.0);
        let err = best
            .update_from(&[("valid/acc".to_string(), 0.5)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("valid/loss") && err.contains("valid/acc"),
            "{err}"
        );
    }

    #[test]
    fn a_fresh_tracker_survives_json() {
        for direction in [Direction::Minimize, Direction::Maximize] {
            let fresh = BestMetric::new("valid/loss", direction);
            let text = serde_json::to_string(&fresh).unwrap();
            assert!(text.contains("null"), "{text}");
            assert_eq!(serde_json::from_str::<BestMetric>(&text).unwrap(), fresh);
            let mut seen = fresh.clone();
            seen.update(0.25);
            let back: BestMetric =
                serde_json::from_str(&serde_json::to_string(&seen).unwrap()).unwrap();
            assert_eq!(back, seen);
        }
    }

    #[test]
    fn first_value_is_always_best_and_direction_is_respected() {
        let mut loss = BestMetric::new("valid/loss", Direction::Minimize);
        assert!(loss.update(5.0));
        assert!(!loss.update(6.0));
        assert!(loss.update(4.0));
        assert!(!loss.update(f64::NAN));
        assert_eq!(loss.value, 4.0);
        let mut acc = BestMetric::new("valid/accuracy", Direction::Maximize);
        assert!(acc.update(0.0));
        assert!(!acc.update(-1.0));
        assert!(acc.update(0.5));
    }
}
