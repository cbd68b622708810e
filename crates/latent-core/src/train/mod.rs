//! Shared training machinery: one loop ([`trainer::train`]) with gradient accumulation, global-norm
//! clipping, per-update schedules and parameter groups, used by every method crate.

pub mod best;
pub mod clip;
pub mod groups;
pub mod schedule;
pub mod trainer;

pub use best::{BestMetric, Direction};
pub use clip::{clip_grad_norm, global_grad_norm};
pub use groups::{AdamWSettings, GroupedOptimizer, ParamGroupConfig};
pub use schedule::{total_updates, LrSchedule, ScheduleKind};
pub use trainer::{train, LoopConfig, StepLoss, TrainStep, UpdateRecord};
