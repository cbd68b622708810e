//! Exponential moving average of a noisy curve (per-update loss, reward), drawn over the faint raw
//! curve.

/// The EMA span used for a curve of `n` points: a twentieth of the curve, at least 5 points.
pub fn span(n: usize) -> usize {
    (n / 20).max(5)
}

/// The exponential moving average of the `y` values with smoothing `α = 2 / (span + 1)`, started
/// at the first value (`x` values are kept).
pub fn ema(points: &[(f64, f64)], span: usize) -> Vec<(f64, f64)> {
    let alpha = 2.0 / (span as f64 + 1.0);
    let mut out = Vec::with_capacity(points.len());
    let mut avg = None;
    for &(x, y) in points {
        let next = match avg {
            None => y,
            Some(a) => a + alpha * (y - a),
        };
        avg = Some(next);
        out.push((x, next));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ema_follows_the_recurrence() {
        // span 3: α = 0.5.
        let smoothed = ema(&[(0.0, 4.0), (1.0, 0.0), (2.0, 2.0), (3.0, 5.0)], 3);
        assert_eq!(
            smoothed,
            vec![(0.0, 4.0), (1.0, 2.0), (2.0, 2.0), (3.0, 3.5)]
        );
        assert!(ema(&[], 3).is_empty());
    }

    #[test]
    fn span_is_a_twentieth_of_the_curve_and_at_least_five() {
        assert_eq!(span(10), 5);
        assert_eq!(span(1000), 50);
    }
}
