//! The value checks every run config's training section shares (accumulation 0, a negative or
//! infinite learning rate, a warm-up as long as the run, a clipping norm of 0, bf16 parameters
//! trained without master weights), so each method crate states only which key holds which value.
//! A value that cannot work is an error naming its key (the crates add the file and line with
//! [`crate::config_file::key_location`]); nothing is silently corrected.

use burn::tensor::DType;

use super::precision::Precision;

/// What a training value must be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Expect {
    /// A count of at least 1 (epochs, batch size, accumulation).
    Count(usize),
    /// A learning rate: finite and positive.
    LearningRate(f64),
    /// A learning rate that may be 0 (a group frozen on purpose): finite, not negative.
    LearningRateOrZero(f64),
    /// A warm-up share of the run: in [0, 1) (1 or more would warm up for the whole run).
    WarmupRatio(f64),
    /// Finite and not negative (weight decay, loss factors).
    NonNegative(f64),
    /// A gradient-clipping norm: absent, or finite and positive.
    ClipNorm(Option<f64>),
}

impl Expect {
    /// Why the value cannot work, if it cannot.
    pub fn problem(self) -> Option<String> {
        match self {
            Expect::Count(0) => Some("must be at least 1 (0 would never update)".into()),
            Expect::LearningRate(v) if !(v > 0.0 && v.is_finite()) => Some(format!(
                "{v} must be finite and positive (a learning rate of 0 trains nothing)"
            )),
            Expect::LearningRateOrZero(v) if !(v >= 0.0 && v.is_finite()) => {
                Some(format!("{v} must be finite and not negative (0 freezes)"))
            }
            Expect::WarmupRatio(v) if !(0.0..1.0).contains(&v) => Some(if v >= 1.0 {
                format!("{v} × the run: the warm-up would last the whole run or longer (use a share in [0, 1))")
            } else {
                format!("{v} is not a share of the run in [0, 1)")
            }),
            Expect::NonNegative(v) if !(v >= 0.0 && v.is_finite()) => {
                Some(format!("{v} must be finite and not negative"))
            }
            Expect::ClipNorm(Some(v)) if !(v > 0.0 && v.is_finite()) => Some(format!(
                "{v} must be finite and positive (leave it out to disable clipping)"
            )),
            _ => None,
        }
    }
}

/// The first `(key, reason)` among `values` whose value cannot work.
pub fn first_problem<'a>(values: &[(&'a str, Expect)]) -> Option<(&'a str, String)> {
    values
        .iter()
        .find_map(|(key, expect)| expect.problem().map(|reason| (*key, reason)))
}

/// Why parameters loaded as `dtype` cannot train at `precision`, if they cannot: bf16/f16
/// parameters with precision f32 would train in pure low precision, where updates below half an
/// ulp (a weight near 0.02 at lr 2e-5 in bf16) are lost.
pub fn parameter_dtype_problem(dtype: DType, precision: Precision) -> Option<String> {
    (dtype != DType::F32 && precision == Precision::F32).then(|| {
        format!(
            "{dtype:?} parameters with precision f32 would train in pure {dtype:?} (updates smaller \
             than half an ulp are lost); set the training precision to bf16 or f16 (f32 master \
             weights) or load the model in f32"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_that_cannot_work_is_named() {
        let ok = [
            ("a", Expect::Count(1)),
            ("b", Expect::LearningRate(1e-5)),
            ("c", Expect::LearningRateOrZero(0.0)),
            ("d", Expect::WarmupRatio(0.0)),
            ("e", Expect::NonNegative(0.0)),
            ("f", Expect::ClipNorm(None)),
            ("g", Expect::ClipNorm(Some(1.0))),
        ];
        assert_eq!(first_problem(&ok), None);
        for (expect, needle) in [
            (Expect::Count(0), "at least 1"),
            (Expect::LearningRate(-1e-4), "-0.0001"),
            (Expect::LearningRate(0.0), "positive"),
            (Expect::LearningRate(f64::NAN), "NaN"),
            (Expect::LearningRateOrZero(-1.0), "not negative"),
            (Expect::WarmupRatio(1.5), "whole run"),
            (Expect::WarmupRatio(-0.1), "[0, 1)"),
            (Expect::NonNegative(-0.1), "not negative"),
            (Expect::ClipNorm(Some(0.0)), "disable clipping"),
        ] {
            let values = [("fine", Expect::Count(3)), ("bad.key", expect)];
            let (key, reason) = first_problem(&values).expect("a problem");
            assert_eq!(key, "bad.key");
            assert!(reason.contains(needle), "{expect:?}: {reason}");
        }
    }

    #[test]
    fn low_precision_parameters_need_master_weights() {
        assert!(parameter_dtype_problem(DType::BF16, Precision::F32).is_some());
        assert!(parameter_dtype_problem(DType::BF16, Precision::Bf16).is_none());
        assert!(parameter_dtype_problem(DType::F32, Precision::F32).is_none());
        assert!(parameter_dtype_problem(DType::F16, Precision::Bf16).is_none());
    }
}
