//! Shared training machinery: one loop ([`trainer::train`]) with gradient accumulation, global-norm
//! clipping, per-update schedules and parameter groups, used by every method crate.
//!
//! A method supplies a [`TrainStep`] (the loss of a micro-batch); see `docs/training.md`:
//!
//! ```no_run
//! use burn::backend::Autodiff;
//! use burn::prelude::*;
//! use latent_core::train::*;
//! use latent_core::{CausalLm, CpuBackend, LmInput};
//!
//! type AB = Autodiff<CpuBackend>;
//!
//! /// Next-token cross-entropy on `[batch, seq]` ids.
//! struct NextToken;
//!
//! impl TrainStep<AB, CausalLm<AB>> for NextToken {
//!     type Batch = Tensor<AB, 2, Int>;
//!     fn loss(&mut self, model: &CausalLm<AB>, ids: &Self::Batch, _at: StepIndex) -> latent_core::Result<StepLoss<AB>> {
//!         let [b, s] = ids.dims();
//!         let logits = model.forward(LmInput::ids(ids.clone()))?.logits;
//!         let v = logits.dims()[2];
//!         let logits = logits.slice([0..b, 0..s - 1]).reshape([b * (s - 1), v]);
//!         let targets = ids.clone().slice([0..b, 1..s]).reshape([b * (s - 1)]);
//!         let loss = burn::nn::loss::CrossEntropyLossConfig::new().init(&logits.device()).forward(logits, targets);
//!         let ce: f64 = loss.clone().into_scalar().elem();
//!         Ok(StepLoss { loss, terms: vec![("ce".into(), ce)] })
//!     }
//! }
//!
//! fn fit(model: CausalLm<AB>, batches: Vec<Tensor<AB, 2, Int>>) -> latent_core::Result<CausalLm<AB>> {
//!     let config = LoopConfig { epochs: 3, accumulation: 4, max_grad_norm: Some(1.0), start: Default::default(),
//!                              seed: 0, precision: Precision::Bf16 };
//!     let groups = [
//!         // GRPO-style groups: a module-path prefix selects each group's parameters.
//!         ParamGroupConfig { name: "head".into(), prefixes: vec!["lm_head".into()], lr: 1e-4,
//!                            weight_decay: 0.0, schedule: ScheduleKind::Cosine, warmup_ratio: 0.03 },
//!         ParamGroupConfig { name: "rest".into(), prefixes: vec![], lr: 5e-6,
//!                            weight_decay: 0.1, schedule: ScheduleKind::Cosine, warmup_ratio: 0.03 },
//!     ];
//!     let total = total_updates(config.epochs, batches.len(), config.accumulation);
//!     let mut optim = GroupedOptimizer::new(&model, &groups, &AdamWSettings::default(), total)?;
//!     let (model, _updates) = train(model, &mut NextToken, |_epoch| batches.clone(), &mut optim, &config,
//!         |_model, _optim, u, _position| { println!("update {} loss {:.4} |g| {:.3} lr {:?}", u.update, u.loss, u.grad_norm, u.lrs); Ok(()) })?;
//!     Ok(model)
//! }
//! ```

pub mod autodiff;
pub mod best;
pub mod checkpoint;
pub mod clip;
mod collective;
pub mod data_parallel;
pub mod groups;
pub mod micro_batch_rng;
pub mod plot;
pub mod precision;
pub mod progress_lines;
pub mod replica;
pub mod run_log;
pub mod schedule;
pub mod scheduler_state;
pub mod shard;
pub mod state_dict;
pub mod trainer;
pub mod value_checks;
pub mod weights;

pub use crate::stop::{check_stop, SignalAction, SignalHandler, StopFlag};
pub use autodiff::{AutodiffDevicesJob, AutodiffJob, Checkpointed, TrainingJob};
pub use best::{BestMetric, Direction};
pub use checkpoint::{
    load_checkpoint, save_checkpoint, CheckpointPolicy, Position, TrainingState, EVALUATION_PENDING,
};
pub use clip::{clip_grad_norm, global_grad_norm, scale_to_max_norm};
pub use data_parallel::{train_data_parallel, DataParallel, GlobalCollective};
pub use groups::{AdamWSettings, GroupedOptimizer, OptimizerTensors, ParamGroupConfig};
pub use micro_batch_rng::micro_batch_seed;
pub use precision::{LossScale, Precision};
pub use replica::Replica;
pub use run_log::RunLog;
pub use schedule::{total_updates, LrSchedule, ScheduleKind};
pub use shard::{shard_range, Shard};
pub use trainer::{train, LoopConfig, StepIndex, StepLoss, TrainStep, UpdateRecord};
pub use value_checks::{first_problem, parameter_dtype_problem, Expect};
pub use weights::{load_training_weights, save_training_weights};
