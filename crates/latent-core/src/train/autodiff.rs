//! Which autodiff backend a training run uses: activation (gradient) checkpointing as a run-config
//! switch (`checkpointing: true` in the training section of every run config).
//!
//! Burn picks what the backward pass keeps through the autodiff backend's type,
//! `Autodiff<B, C>` with a checkpoint strategy `C`:
//!
//! - [`NoCheckpointing`] (Burn's default, `Autodiff<B>`): every output an operation's backward needs
//!   is kept from the forward pass until that backward step runs.
//! - [`BalancedCheckpointing`] ([`Checkpointed`]): Burn marks each operation compute-bound
//!   (matmul, sums and means, gather/scatter, casts, `mask_fill`, the embedding lookup and
//!   the linear module) or memory-bound (element-wise arithmetic, `exp`/`log`/`sqrt`/`tanh`/`erf`
//!   and the other unary functions, GELU/ReLU/sigmoid, and the views: reshape, slice, swap_dims,
//!   permute, expand). A memory-bound output is not kept: its backward recomputes it from its
//!   parents when needed (the parents themselves are kept, or recomputed in turn), so the outputs
//!   of the cheap element-wise ops between two products are freed after the forward pass. An
//!   operation with a parent outside the graph (a frozen weight, a constant) cannot be recomputed
//!   and keeps its output as under `NoCheckpointing`.
//!
//! Both compute the same gradients (`crates/codi/tests/checkpointing.rs` trains a model both ways
//! and compares the parameters); the measured memory and time are in docs/performance.md.
//!
//! A training job is written once, generic over the autodiff backend ([`AutodiffJob`]), and
//! [`TrainingJob`] runs it on the backend the flag selects; being a [`BackendJob`], it composes
//! with [`crate::DeviceSpec::run`]:
//!
//! ```no_run
//! use burn::tensor::backend::AutodiffBackend;
//! use latent_core::train::autodiff::{AutodiffJob, TrainingJob};
//! use latent_core::DeviceSpec;
//!
//! struct Fit;
//!
//! impl AutodiffJob for Fit {
//!     type Output = String;
//!     fn run<A: AutodiffBackend>(self, _device: A::Device) -> String {
//!         std::any::type_name::<A>().to_string() // build the model on `A` and train it here
//!     }
//! }
//!
//! let backend = DeviceSpec::Cpu.run(TrainingJob { checkpointing: true, job: Fit }).unwrap();
//! assert!(backend.contains("BalancedCheckpointing"));
//! ```

use burn::backend::autodiff::checkpoint::strategy::{BalancedCheckpointing, NoCheckpointing};
use burn::backend::Autodiff;
use burn::tensor::backend::{AutodiffBackend, Backend};

use crate::{BackendJob, DevicesJob};

/// The autodiff backend of a run with `checkpointing: true`.
pub type Checkpointed<B> = Autodiff<B, BalancedCheckpointing>;

/// The autodiff backend of a run with `checkpointing: false` (Burn's default strategy).
pub type Plain<B> = Autodiff<B, NoCheckpointing>;

/// Training code generic over the autodiff backend, run by [`TrainingJob`].
pub trait AutodiffJob {
    /// What the job returns.
    type Output;
    /// Runs the job on autodiff backend `A` (its inner backend, `A::InnerBackend`, serves
    /// inference copies: `model.valid()`) and `device`.
    fn run<A: AutodiffBackend>(self, device: A::Device) -> Self::Output;
}

/// Training code over several devices (one data-parallel replica each), generic over the autodiff
/// backend, run by [`TrainingJob`] as a [`DevicesJob`] (`crate::DeviceList::run`).
pub trait AutodiffDevicesJob {
    /// What the job returns.
    type Output;
    /// Runs the job on autodiff backend `A` with `devices` (one per replica, in order).
    fn run<A: AutodiffBackend>(self, devices: Vec<A::Device>) -> Self::Output;
}

/// A [`BackendJob`] (or [`DevicesJob`]) that runs `job` on `Autodiff<B>` or, with `checkpointing`,
/// `Autodiff<B, BalancedCheckpointing>` ([`Checkpointed`]).
#[derive(Debug, Clone)]
pub struct TrainingJob<J> {
    /// Activation checkpointing (the run config's `checkpointing`).
    pub checkpointing: bool,
    /// The training job.
    pub job: J,
}

impl<J: AutodiffJob> BackendJob for TrainingJob<J> {
    type Output = J::Output;

    fn run<B: Backend>(self, device: B::Device) -> J::Output {
        if self.checkpointing {
            self.job.run::<Checkpointed<B>>(device)
        } else {
            self.job.run::<Plain<B>>(device)
        }
    }
}

impl<J: AutodiffDevicesJob> DevicesJob for TrainingJob<J> {
    type Output = J::Output;

    fn run<B: Backend>(self, devices: Vec<B::Device>) -> J::Output {
        if self.checkpointing {
            self.job.run::<Checkpointed<B>>(devices)
        } else {
            self.job.run::<Plain<B>>(devices)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CpuBackend;

    /// The name of the backend a job runs on.
    struct BackendName;

    impl AutodiffJob for BackendName {
        type Output = String;
        fn run<A: AutodiffBackend>(self, _device: A::Device) -> String {
            std::any::type_name::<A>().to_string()
        }
    }

    #[test]
    fn the_flag_selects_the_checkpoint_strategy() {
        let run = |checkpointing| {
            TrainingJob {
                checkpointing,
                job: BackendName,
            }
            .run::<CpuBackend>(Default::default())
        };
        assert_eq!(run(true), std::any::type_name::<Checkpointed<CpuBackend>>());
        assert_eq!(run(false), std::any::type_name::<Plain<CpuBackend>>());
        assert!(run(true).contains("BalancedCheckpointing"), "{}", run(true));
        assert!(
            !run(false).contains("BalancedCheckpointing"),
            "{}",
            run(false)
        );
    }
}
