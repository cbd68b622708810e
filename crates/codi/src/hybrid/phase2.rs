//! Phase 2: hybrid training. The model, special ids, projection and forward are plain CODI's, so
//! the output `final_model/` evaluates in plain `codi_eval` (as CODI: `<bot>`, `num_latent`
//! thoughts, `<eot>`) and in hybrid mode (`--baseline_mode`); a plain CODI `final_model/` can be
//! the starting point (`method.restore_from`). Each epoch, a `hybrid_cot_only_ratio` share of the
//! samples (drawn per epoch) trains as pure explicit CoT. The Phase 1 settings the step
//! controller follows are saved as `final_model/hybrid.json` ([`HybridSettings`]).

use std::path::{Path, PathBuf};

use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use latent_core::train::{StepLoss, TrainStep};
use serde::Serialize;

use super::batch::{
    collate_hybrid, cot_only_flags, prepare_hybrid, HybridBatch, HybridExample, SwitchLabels,
};
use super::loss::hybrid_loss;
use super::schema::read_hybrid_file;
use super::settings::HybridSettings;
use crate::config::CodiRunConfig;
use crate::loss::LossConfig;
use crate::model::CodiModel;
use crate::run::{build, epoch_batches, prep_config, train_with, TrainOptions, TrainReport};
use crate::step::{host, keep_embedding_rows_from};
use crate::{CodiError, Result, Task};

/// The [`TrainStep`] of Phase 2.
#[derive(Debug, Clone)]
pub struct HybridStep {
    /// Loss settings.
    pub loss: LossConfig,
    /// When set, only embedding rows from this index on receive gradient.
    pub train_rows_from: Option<usize>,
    /// Also align each `<eot>` with the teacher's state at the end of the replaced steps.
    pub eot_distill: bool,
}

impl<B: AutodiffBackend> TrainStep<B, CodiModel<B>> for HybridStep {
    type Batch = HybridBatch;

    fn loss(
        &mut self,
        model: &CodiModel<B>,
        batch: &HybridBatch,
        _at: latent_core::train::StepIndex,
    ) -> latent_core::Result<StepLoss<B>> {
        let terms = hybrid_loss(model, batch, &self.loss, self.eot_distill)
            .map_err(|e| latent_core::CoreError::Method(Box::new(e)))?;
        let kd_eot = host(&terms.kd_eot);
        let terms = terms.codi;
        Ok(StepLoss {
            terms: vec![
                ("student_ce".to_string(), host(&terms.student_ce)),
                ("teacher_ce".to_string(), host(&terms.teacher_ce)),
                ("kd".to_string(), host(&terms.kd)),
                ("kd_eot".to_string(), kd_eot),
            ],
            loss: terms.total,
        })
    }

    fn adjust_gradients(&mut self, model: &CodiModel<B>, grads: &mut GradientsParams) {
        if let Some(from) = self.train_rows_from {
            keep_embedding_rows_from(model, grads, from);
        }
    }
}

/// Real tokens and thoughts a micro-batch processes.
fn batch_tokens(batch: &HybridBatch) -> usize {
    let ones = |g: &crate::batch::Grid| g.data.iter().filter(|&&v| v != 0).count();
    ones(&batch.teacher.mask)
        + batch.chunks.iter().map(|c| ones(&c.mask)).sum::<usize>()
        + batch.runs.iter().flatten().sum::<usize>()
}

/// The Phase 2 settings the design document names as flags, applied over a run config.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Phase2Overrides {
    /// `model.name_or_path`.
    pub model_name_or_path: Option<String>,
    /// `method.restore_from`: a saved CODI model to continue from.
    pub restore_from: Option<PathBuf>,
    /// `training.output_dir`.
    pub output_dir: Option<PathBuf>,
    /// `training.epochs`.
    pub num_train_epochs: Option<usize>,
    /// `training.per_device_batch_size` (and the effective batch, unless it is a multiple).
    pub per_device_train_batch_size: Option<usize>,
    /// `training.learning_rate`.
    pub learning_rate: Option<f64>,
    /// `method.num_latent` (thoughts of plain CODI evaluation of the result).
    pub num_latent: Option<usize>,
    /// `method.prj_dim`.
    pub prj_dim: Option<usize>,
    /// β.
    pub distill_loss_factor: Option<f64>,
    /// γ.
    pub ref_loss_factor: Option<f64>,
    /// Train in bf16 with f32 master weights (`training.precision: bf16`).
    pub bf16: bool,
}

impl Phase2Overrides {
    /// `base` with these settings applied and the task set to CODI.
    pub fn apply(&self, mut c: CodiRunConfig) -> CodiRunConfig {
        c.method.task = Task::Codi;
        if let Some(v) = &self.model_name_or_path {
            c.model.name_or_path = Some(v.clone());
        }
        if let Some(v) = &self.restore_from {
            c.method.restore_from = Some(v.clone());
        }
        if let Some(v) = &self.output_dir {
            c.training.output_dir = v.clone();
        }
        if let Some(v) = self.num_train_epochs {
            c.training.epochs = v;
        }
        if let Some(v) = self.per_device_train_batch_size {
            c.training.per_device_batch_size = v;
            if !c.training.effective_batch_size.is_multiple_of(v) {
                c.training.effective_batch_size = v;
            }
        }
        if let Some(v) = self.learning_rate {
            c.training.learning_rate = v;
        }
        if let Some(v) = self.num_latent {
            c.method.num_latent = v;
        }
        if let Some(v) = self.prj_dim {
            c.method.prj_dim = Some(v);
        }
        if let Some(v) = self.distill_loss_factor {
            c.method.distill_loss_factor = v;
        }
        if let Some(v) = self.ref_loss_factor {
            c.method.ref_loss_factor = v;
        }
        if self.bf16 {
            c.training.precision = latent_core::train::Precision::Bf16;
        }
        c
    }
}

/// The design document's Phase 2 defaults (5 epochs, batch 4, lr 2e-5, warm-up 10 %, cosine,
/// clip 2.0, full fine-tuning), for runs without a config file.
pub fn default_phase2_config() -> CodiRunConfig {
    serde_json::from_value(serde_json::json!({
        "model": {},
        "method": {"task": "codi"},
        "data": {},
        "training": {
            "output_dir": "runs/hybrid_codi",
            "epochs": 5,
            "per_device_batch_size": 4,
            "effective_batch_size": 4,
            "learning_rate": 2e-5,
            "warmup_ratio": 0.1,
            "max_grad_norm": 2.0
        }
    }))
    .expect("the default Phase 2 config deserialises")
}

/// Phase 2's own settings, beside the run config.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HybridTraining {
    /// Share of the samples trained as pure explicit CoT each epoch (0.2).
    pub cot_only_ratio: f64,
    /// Also align each `<eot>` with the teacher's state at the last token of the steps its run
    /// replaced.
    pub eot_distill: bool,
    /// Which switch predictions entropy-rule samples train.
    pub switch_labels: SwitchLabels,
}

impl Default for HybridTraining {
    fn default() -> Self {
        Self {
            cot_only_ratio: 0.2,
            eot_distill: false,
            switch_labels: SwitchLabels::All,
        }
    }
}

/// Trains on the hybrid samples of `hybrid_data` as `config` says (its `method.task` must be
/// CODI); saves `output_dir/final_model`. With several `devices`, one data-parallel replica per
/// device, each taking `per_device_batch_size` examples of every micro-batch (as `codi_train
/// --devices`, [`crate::run::micro_batching`]); the model is built on `devices[0]`.
pub fn run_phase2<B: AutodiffBackend>(
    config: &CodiRunConfig,
    hybrid_data: &Path,
    hybrid: &HybridTraining,
    options: &TrainOptions,
    devices: &[B::Device],
) -> Result<(CodiModel<B>, TrainReport)> {
    let device = devices.first().ok_or_else(|| CodiError::Config {
        path: PathBuf::from("<phase 2>"),
        key: "training.device".into(),
        reason: "no device to train on".into(),
    })?;
    let hybrid_cot_only_ratio = hybrid.cot_only_ratio;
    if config.method.task != Task::Codi {
        return Err(CodiError::Config {
            path: PathBuf::from("<phase 2>"),
            key: "method.task".into(),
            reason: "Phase 2 trains a CODI model".into(),
        });
    }
    if !(0.0..=1.0).contains(&hybrid_cot_only_ratio) {
        return Err(CodiError::Config {
            path: PathBuf::from("<phase 2>"),
            key: "hybrid_cot_only_ratio".into(),
            reason: format!("{hybrid_cot_only_ratio} is not in [0, 1]"),
        });
    }
    let mut built = build::<B>(config, device)?;
    built.meta.num_latent = config.method.num_latent;
    let prep = prep_config(config, &built.meta, built.model.lm.config());
    let file = read_hybrid_file(hybrid_data)?;
    let mut examples = prepare_hybrid(&file, &built.tokenizer, &prep, hybrid.switch_labels)?;
    if let Some(limit) = config.data.max_train_samples {
        examples.truncate(limit);
    }
    let tokens = built.meta.tokens;
    let step = HybridStep {
        loss: config.loss(),
        train_rows_from: (config.method.embeddings == crate::config::EmbeddingTraining::NewTokens)
            .then_some(tokens.base_vocab),
        eot_distill: hybrid.eot_distill,
    };
    let (per_batch, _) = crate::run::micro_batching(config, devices.len())?;
    let seed = config.training.seed;
    let data: &[HybridExample] = &examples;
    let batches = move |epoch: usize| {
        let cot_only = cot_only_flags(data.len(), hybrid_cot_only_ratio, seed, epoch);
        epoch_batches(data.len(), per_batch, seed, epoch, |idx| {
            let rows: Vec<&HybridExample> = idx.iter().map(|&i| &data[i]).collect();
            let flags: Vec<bool> = idx.iter().map(|&i| cot_only[i]).collect();
            collate_hybrid(&rows, &flags, &tokens)
        })
    };
    let (model, report) = train_with(
        config,
        built,
        examples.len(),
        step,
        batches,
        batch_tokens,
        options,
        devices,
    )?;
    HybridSettings::from(&file.generator).write(&report.saved)?;
    Ok((model, report))
}

#[cfg(test)]
mod tests {
    use burn::backend::Autodiff;
    use burn::module::AutodiffModule;
    use latent_core::CpuBackend;

    use super::*;
    use crate::data::PrepConfig;
    use crate::eval::EvalConfig;
    use crate::hybrid::phase1::{generate, Phase1Config};
    use crate::hybrid::schema::write_hybrid_file;
    use crate::hybrid::schema::HybridFile;
    use crate::hybrid::testing::{problems, tiny_meta, tiny_setup};
    use crate::run::{evaluate_saved, FINAL_MODEL};
    use latent_core::train::state_dict::module_tensors;

    /// The tiny plain CODI model saved in `dir/plain`, and its Phase 1 file `dir/hybrid.json`.
    fn plain_model_and_phase1(dir: &Path) -> (CodiModel<CpuBackend>, HybridFile, PathBuf) {
        let (model, tokenizer, _) = tiny_setup();
        let meta = tiny_meta(&model, 3);
        let plain = dir.join("plain");
        model.save(&plain, Some(&tokenizer), &meta).unwrap();
        let problems = problems();
        let phase1 = Phase1Config {
            random_ratio: 0.5,
            ..Phase1Config::default()
        };
        let (file, _) = generate(
            &model,
            &tokenizer,
            &problems,
            &PrepConfig::default(),
            &phase1,
            "tiny",
            "synthetic",
        )
        .unwrap();
        assert!(file.samples.iter().any(|s| s.latent_runs() > 0));
        let data = dir.join("hybrid.json");
        write_hybrid_file(&data, &file).unwrap();
        (model, file, plain)
    }

    /// Two replicas (2 examples each per micro-batch of 4) train Phase 2 as one device
    /// accumulating the same shards (2 micro-batches of 2): parameters within 1e-5.
    #[test]
    fn phase2_on_two_replicas_trains_as_one_device_accumulating_their_shards() {
        let dir = std::env::temp_dir().join(format!("codi-phase2-dp-{}", std::process::id()));
        let (_, _, plain) = plain_model_and_phase1(&dir);
        let train = |devices: usize| {
            let mut config = Phase2Overrides {
                restore_from: Some(plain.clone()),
                output_dir: Some(dir.join(format!("devices-{devices}"))),
                num_train_epochs: Some(4),
                per_device_train_batch_size: Some(2),
                learning_rate: Some(1e-2),
                num_latent: Some(2),
                ..Phase2Overrides::default()
            }
            .apply(default_phase2_config());
            config.training.effective_batch_size = 4;
            // Whole micro-batches (a last partial one weighs its rows as DDP does, not as one
            // device's token mean).
            config.data.max_train_samples = Some(4);
            let (trained, report) = run_phase2::<Autodiff<CpuBackend>>(
                &config,
                &dir.join("hybrid.json"),
                &HybridTraining {
                    cot_only_ratio: 0.25,
                    eot_distill: true,
                    switch_labels: SwitchLabels::All,
                },
                &TrainOptions::default(),
                &vec![Default::default(); devices],
            )
            .unwrap();
            (module_tensors(&trained.valid()), report.updates)
        };
        let (one, one_updates) = train(1);
        let (two, two_updates) = train(2);
        assert_eq!(one_updates, two_updates);
        assert!(one_updates >= 4, "{one_updates} updates");
        let mut largest = 0.0f32;
        for ((path, a), (_, b)) in one.iter().zip(&two) {
            assert_eq!(a.shape, b.shape, "{path}");
            for (x, y) in a.data.iter().zip(&b.data) {
                largest = largest.max((x - y).abs());
            }
        }
        assert!(largest <= 1e-5, "parameters differ by {largest}");
        std::fs::remove_dir_all(&dir).ok();
    }

    /// A plain CODI model → Phase 1 → Phase 2 (`restore_from` it) → the Phase 2 `final_model`
    /// evaluates in plain CODI evaluation with the same special ids.
    #[test]
    fn phase2_restores_plain_codi_and_its_checkpoint_evaluates_plainly() {
        let dir = std::env::temp_dir().join(format!("codi-phase2-{}", std::process::id()));
        let (model, file, plain) = plain_model_and_phase1(&dir);
        let problems = problems();
        let data = dir.join("hybrid.json");
        let epochs = 12;
        let config = Phase2Overrides {
            restore_from: Some(plain.clone()),
            output_dir: Some(dir.join("hybrid_codi")),
            num_train_epochs: Some(epochs),
            per_device_train_batch_size: Some(4),
            learning_rate: Some(1e-2),
            num_latent: Some(2),
            ..Phase2Overrides::default()
        }
        .apply(default_phase2_config());
        // The restored model is the saved one, projection included.
        let restored = crate::run::build::<CpuBackend>(&config, &Default::default()).unwrap();
        let weights = |m: &CodiModel<CpuBackend>| -> Vec<f32> {
            let p = m.prj.as_ref().expect("a projection");
            let mut v: Vec<f32> = p.fc1.weight.val().into_data().to_vec().unwrap();
            v.extend(p.fc2.weight.val().into_data().to_vec::<f32>().unwrap());
            v
        };
        assert_eq!(weights(&restored.model), weights(&model));
        let options = TrainOptions::default();
        let (trained, report) = run_phase2::<Autodiff<CpuBackend>>(
            &config,
            &data,
            &HybridTraining {
                cot_only_ratio: 0.0,
                eot_distill: true,
                switch_labels: SwitchLabels::All,
            },
            &options,
            &[Default::default()],
        )
        .unwrap();
        assert_eq!(report.updates, 2 * epochs);
        assert_ne!(weights(&trained.valid()), weights(&model));
        // The loss falls: the last epoch's mean against the first's.
        let log = std::fs::read_to_string(dir.join("hybrid_codi").join("metrics.jsonl")).unwrap();
        let first: Vec<f64> = log
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["epoch"] == 0)
            .map(|v| v["loss"].as_f64().unwrap())
            .collect();
        let first = first.iter().sum::<f64>() / first.len() as f64;
        assert!(
            report.final_loss < 0.95 * first,
            "loss {first} -> {}",
            report.final_loss
        );
        // The Phase 1 settings travel with the model.
        let settings = HybridSettings::read(&report.saved).unwrap().unwrap();
        assert_eq!(settings, HybridSettings::from(&file.generator));
        let saved = dir.join("hybrid_codi").join(FINAL_MODEL);
        let meta = crate::model::read_meta(&saved).unwrap();
        assert_eq!(
            (meta.task, meta.tokens, meta.num_latent),
            (Task::Codi, model.tokens, 2)
        );
        let (summary, _) = evaluate_saved::<CpuBackend>(
            &config,
            &saved,
            &problems,
            |_, _| PrepConfig::default(),
            &EvalConfig {
                max_new_tokens: 8,
                ..EvalConfig::default()
            },
            &Default::default(),
            |_| {},
        )
        .unwrap();
        assert_eq!(
            (summary.task, summary.examples),
            (Task::Codi, problems.len())
        );
        assert_eq!(summary.mean_latent_steps, 2.0);
        std::fs::remove_dir_all(&dir).ok();
    }
}
