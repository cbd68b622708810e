//! Parameter groups: named sets of parameters selected by module path, each with its own learning
//! rate, weight decay and schedule, each stepped by its own AdamW (PyTorch defaults set explicitly).
//! At learning rate 0 a group's moments and step count still advance, as PyTorch's do, while its
//! parameters stay bit-identical (`p − 0 · δ = p`). A group that selects no parameter, or a
//! trainable parameter in no group, is an error at set-up.

use std::collections::HashMap;

use burn::module::{AutodiffModule, ModuleVisitor, Param, ParamId};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use super::schedule::{LrSchedule, ScheduleKind};

/// AdamW hyper-parameters, PyTorch's defaults (Burn's differ: eps 1e-5, weight decay 1e-4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamWSettings {
    /// β₁.
    pub beta_1: f64,
    /// β₂.
    pub beta_2: f64,
    /// ε.
    pub epsilon: f64,
    /// Put biases and norm weights in a zero-weight-decay copy of their group.
    pub no_decay_bias_and_norm: bool,
}

impl Default for AdamWSettings {
    fn default() -> Self {
        Self {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            no_decay_bias_and_norm: false,
        }
    }
}

/// One parameter group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamGroupConfig {
    /// Name used in logs (`lr/<name>`).
    pub name: String,
    /// Module-path prefixes (e.g. `layers.0.self_attn`, `lm_head`). A parameter joins the first
    /// group one of whose prefixes its path starts with; a group with no prefixes takes every
    /// parameter no other group claims.
    #[serde(default)]
    pub prefixes: Vec<String>,
    /// Peak learning rate.
    pub lr: f64,
    /// Decoupled weight decay.
    #[serde(default)]
    pub weight_decay: f64,
    /// Schedule shape.
    #[serde(default = "default_kind")]
    pub schedule: ScheduleKind,
    /// Warm-up fraction.
    #[serde(default)]
    pub warmup_ratio: f64,
}

fn default_kind() -> ScheduleKind {
    ScheduleKind::Constant
}

#[derive(Clone)]
struct Group<B: AutodiffBackend, M: AutodiffModule<B>> {
    name: String,
    schedule: LrSchedule,
    /// (parameter ids, optimizer) for the decayed and the non-decayed part.
    parts: Vec<(Vec<ParamId>, OptimizerAdaptor<AdamW, M, B>)>,
}

/// The optimizers of every group of one module. A clone carries the same state (data-parallel
/// replicas start from clones).
#[derive(Clone)]
pub struct GroupedOptimizer<B: AutodiffBackend, M: AutodiffModule<B>> {
    groups: Vec<Group<B, M>>,
    sizes: Vec<(String, usize)>,
}

/// The group names, for messages.
fn names(configs: &[ParamGroupConfig]) -> String {
    configs
        .iter()
        .map(|c| format!("{} {:?}", c.name, c.prefixes))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A parameter's module path, id, whether it is a bias or norm weight, size and whether it trains.
type ParamEntry = (String, ParamId, bool, usize, bool);

/// Every float parameter of `module`.
fn parameter_paths<B: AutodiffBackend, M: AutodiffModule<B>>(module: &M) -> Vec<ParamEntry> {
    struct Paths {
        stack: Vec<String>,
        out: Vec<ParamEntry>,
    }
    impl<B: Backend> ModuleVisitor<B> for Paths {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.stack.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.stack.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let path = self.stack.join(".");
            let exempt = path.ends_with(".bias") || path.contains("norm");
            let numel = param.lazy_shape().num_elements();
            let trainable = !param.is_initialized() || param.val().is_require_grad();
            self.out.push((path, param.id, exempt, numel, trainable));
        }
    }
    let mut paths = Paths {
        stack: Vec::new(),
        out: Vec::new(),
    };
    module.visit(&mut paths);
    paths.out
}

impl<B: AutodiffBackend, M: AutodiffModule<B>> GroupedOptimizer<B, M> {
    /// Assigns every parameter of `module` to a group. `total_updates` sizes the schedules.
    ///
    /// Errors name the group whose prefixes select no parameter, or the first trainable parameter
    /// no group takes.
    pub fn new(
        module: &M,
        configs: &[ParamGroupConfig],
        adamw: &AdamWSettings,
        total_updates: usize,
    ) -> crate::Result<Self> {
        let catch_all = configs.iter().position(|g| g.prefixes.is_empty());
        let mut members: Vec<[Vec<ParamId>; 2]> =
            configs.iter().map(|_| [Vec::new(), Vec::new()]).collect();
        let mut sizes: Vec<usize> = vec![0; configs.len()];
        for (path, id, exempt, numel, trainable) in parameter_paths::<B, M>(module) {
            let group = configs
                .iter()
                .position(|g| {
                    g.prefixes
                        .iter()
                        .any(|p| path == *p || path.starts_with(&format!("{p}.")))
                })
                .or(catch_all);
            match group {
                Some(g) => {
                    let part = usize::from(exempt && adamw.no_decay_bias_and_norm);
                    members[g][part].push(id);
                    sizes[g] += numel;
                }
                None if trainable => {
                    return Err(crate::CoreError::InvalidConfig {
                        path: "<parameter groups>".into(),
                        key: path,
                        reason: format!(
                            "this trainable parameter is in no group (groups: {}); add a prefix \
                             that selects it or a group without prefixes",
                            names(configs)
                        ),
                    })
                }
                None => {}
            }
        }
        if let Some((config, _)) = configs
            .iter()
            .zip(&members)
            .find(|(_, m)| m.iter().all(Vec::is_empty))
        {
            return Err(crate::CoreError::InvalidConfig {
                path: "<parameter groups>".into(),
                key: format!("{}.prefixes", config.name),
                reason: format!("{:?} select no parameter of the model", config.prefixes),
            });
        }
        let groups = configs
            .iter()
            .zip(members)
            .map(|(config, [decayed, exempt])| {
                let optim = |weight_decay: f64| {
                    AdamWConfig::new()
                        .with_beta_1(adamw.beta_1 as f32)
                        .with_beta_2(adamw.beta_2 as f32)
                        .with_epsilon(adamw.epsilon as f32)
                        .with_weight_decay(weight_decay as f32)
                        .init::<B, M>()
                };
                let parts = [(decayed, config.weight_decay), (exempt, 0.0)]
                    .into_iter()
                    .filter(|(ids, _)| !ids.is_empty())
                    .map(|(ids, wd)| (ids, optim(wd)))
                    .collect();
                Group {
                    name: config.name.clone(),
                    schedule: LrSchedule {
                        kind: config.schedule,
                        peak_lr: config.lr,
                        warmup_ratio: config.warmup_ratio,
                        total_updates,
                    },
                    parts,
                }
            })
            .collect();
        Ok(Self {
            groups,
            sizes: configs.iter().map(|c| c.name.clone()).zip(sizes).collect(),
        })
    }

    /// `(group name, parameter count)` per group.
    pub fn group_sizes(&self) -> &[(String, usize)] {
        &self.sizes
    }

    /// `(group name, learning rate)` of update `update` (0-based).
    pub fn learning_rates(&self, update: usize) -> Vec<(String, f64)> {
        self.groups
            .iter()
            .map(|g| (g.name.clone(), g.schedule.lr(update)))
            .collect()
    }

    /// `(group name, schedule)` per group.
    pub fn schedules(&self) -> Vec<(String, LrSchedule)> {
        self.groups
            .iter()
            .map(|g| (g.name.clone(), g.schedule.clone()))
            .collect()
    }

    /// Applies update number `update` (0-based) to `module` with (already accumulated and clipped) `grads`.
    pub fn step(&mut self, update: usize, mut module: M, mut grads: GradientsParams) -> M {
        for group in &mut self.groups {
            let lr = group.schedule.lr(update);
            for (ids, optim) in &mut group.parts {
                let part = take_grads::<B, M>(&module, &mut grads, ids);
                if !part.is_empty() {
                    module = optim.step(lr, module, part);
                }
            }
        }
        module
    }
}

/// Moves the gradients of `ids` out of `grads` into a new set.
fn take_grads<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &mut GradientsParams,
    ids: &[ParamId],
) -> GradientsParams {
    struct Take<'a> {
        from: &'a mut GradientsParams,
        to: GradientsParams,
        ids: HashMap<ParamId, ()>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Take<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if self.ids.contains_key(&param.id) {
                if let Some(g) = self.from.remove::<B::InnerBackend, D>(param.id) {
                    self.to.register::<B::InnerBackend, D>(param.id, g);
                }
            }
        }
    }
    let mut take = Take {
        from: grads,
        to: GradientsParams::new(),
        ids: ids.iter().map(|id| (*id, ())).collect(),
    };
    module.visit(&mut take);
    take.to
}

/// AdamW state as host tensors keyed by parameter path: `<path>.moment_1`, `<path>.moment_2`, and
/// the step count of each path.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OptimizerTensors {
    /// Moment tensors.
    pub tensors: Vec<(String, crate::hf::safetensors::HostTensor)>,
    /// Step count (`time`) per parameter path.
    pub steps: std::collections::BTreeMap<String, usize>,
}

type AdamWRecord<B> = burn::optim::record::AdaptorRecord<AdamW, B>;

impl<B: AutodiffBackend, M: AutodiffModule<B>> GroupedOptimizer<B, M> {
    /// The state of every group's optimizers, keyed by parameter path.
    pub fn state_tensors(&self, module: &M) -> OptimizerTensors {
        struct Collect {
            records: HashMap<ParamId, Box<dyn std::any::Any>>,
            path: Vec<String>,
            out: OptimizerTensors,
        }
        impl<B: AutodiffBackend> ModuleVisitor<B> for Collect {
            fn enter_module(&mut self, name: &str, _: &str) {
                self.path.push(name.to_string());
            }
            fn exit_module(&mut self, _: &str, _: &str) {
                self.path.pop();
            }
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                let Some(record) = self.records.remove(&param.id) else {
                    return;
                };
                let record = record.downcast::<AdamWRecord<B>>().expect("AdamW record");
                let state = record.into_state::<D>().momentum;
                let path = self.path.join(".");
                let host = super::state_dict::to_host;
                self.out
                    .tensors
                    .push((format!("{path}.moment_1"), host(state.moment_1)));
                self.out
                    .tensors
                    .push((format!("{path}.moment_2"), host(state.moment_2)));
                self.out.steps.insert(path, state.time);
            }
        }
        let mut records: HashMap<ParamId, Box<dyn std::any::Any>> = HashMap::new();
        for group in &self.groups {
            for (_, optim) in &group.parts {
                for (id, record) in optim.to_record() {
                    records.insert(id, Box::new(record));
                }
            }
        }
        let mut collect = Collect {
            records,
            path: Vec::new(),
            out: OptimizerTensors::default(),
        };
        module.visit(&mut collect);
        collect.out
    }

    /// Restores the state written by [`GroupedOptimizer::state_tensors`] (`module` has the same
    /// structure; parameter ids may differ). Parameters without saved state start fresh.
    pub fn load_state_tensors(
        &mut self,
        module: &M,
        checkpoint: &crate::hf::safetensors::Checkpoint,
        steps: &std::collections::BTreeMap<String, usize>,
    ) -> crate::Result<()> {
        struct Build<'a> {
            checkpoint: &'a crate::hf::safetensors::Checkpoint,
            steps: &'a std::collections::BTreeMap<String, usize>,
            path: Vec<String>,
            records: HashMap<ParamId, Box<dyn std::any::Any>>,
            error: Option<crate::CoreError>,
        }
        impl<B: AutodiffBackend> ModuleVisitor<B> for Build<'_> {
            fn enter_module(&mut self, name: &str, _: &str) {
                self.path.push(name.to_string());
            }
            fn exit_module(&mut self, _: &str, _: &str) {
                self.path.pop();
            }
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                let path = self.path.join(".");
                let Some(&time) = self.steps.get(&path) else {
                    return;
                };
                let value = param.val();
                let (device, dtype) = (value.device(), value.dtype());
                let read = |name: &str| -> crate::Result<Tensor<B::InnerBackend, D>> {
                    let key = format!("{path}.{name}");
                    let host = self.checkpoint.read(&key)?.ok_or_else(|| {
                        crate::CoreError::MissingTensor {
                            location: self.checkpoint.location(),
                            key: key.clone(),
                            param: path.clone(),
                        }
                    })?;
                    Ok(Tensor::from_data(
                        TensorData::new(host.data, host.shape),
                        (&device, dtype),
                    ))
                };
                match (read("moment_1"), read("moment_2")) {
                    (Ok(m1), Ok(m2)) => {
                        let state = burn::optim::AdamWState {
                            momentum: burn::optim::AdaptiveMomentumState::new(time, m1, m2),
                        };
                        self.records
                            .insert(param.id, Box::new(AdamWRecord::<B>::from_state(state)));
                    }
                    (Err(e), _) | (_, Err(e)) => self.error = Some(e),
                }
            }
        }
        let mut build = Build {
            checkpoint,
            steps,
            path: Vec::new(),
            records: HashMap::new(),
            error: None,
        };
        module.visit(&mut build);
        if let Some(err) = build.error {
            return Err(err);
        }
        let mut records = build.records;
        for group in &mut self.groups {
            let parts = std::mem::take(&mut group.parts);
            group.parts = parts
                .into_iter()
                .map(|(ids, optim)| {
                    let record: <OptimizerAdaptor<AdamW, M, B> as Optimizer<M, B>>::Record = ids
                        .iter()
                        .filter_map(|id| {
                            records.remove(id).map(|r| {
                                (*id, *r.downcast::<AdamWRecord<B>>().expect("AdamW record"))
                            })
                        })
                        .collect();
                    (ids, optim.load_record(record))
                })
                .collect();
        }
        Ok(())
    }
}
