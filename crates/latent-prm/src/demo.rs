//! The CPU-sized demo (`cargo run --release --example prm_demo`): the CODI model of the
//! workspace's CODI experiment (trained here when its output directory does not hold it), latent
//! paths collected on training questions, a scorer trained on them (its backbone initialised from
//! the reasoner's own, as LatentRM does), and best-of-N on held-out questions.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use latent_codi::config::DataFormat;
use latent_codi::experiment::{
    beside, setup, train_cot_then_codi, write_results, ExperimentConfig,
};
use latent_codi::run::{load_problems, FINAL_MODEL};
use serde::Serialize;

use crate::collect::{collect, CollectInputs, Reasoner, SamplingConfig};
use crate::config::{DataSection, ModelSection, PrmRunConfig, TrainingSection};
use crate::eval::{evaluate, EvalReport};
use crate::loss::LossKind;
use crate::paths::{CollectionMeta, PathSet};
use crate::train::{train, TrainOptions, TrainReport};
use crate::Result;

/// Settings of the demo (the defaults are the documented run).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DemoConfig {
    /// Where everything goes.
    pub output_dir: PathBuf,
    /// The CODI experiment's output directory (`codi/final_model`, `data/`); trained there with
    /// the experiment's defaults when it does not hold a model.
    pub codi_experiment: PathBuf,
    /// Training questions whose paths train the scorer.
    pub train_questions: usize,
    /// Held-out questions.
    pub test_questions: usize,
    /// Paths per training question.
    pub train_paths: usize,
    /// Paths per held-out question (the largest N).
    pub test_paths: usize,
    /// Noise on each thought.
    pub sigma: f32,
    /// σ relative to each thought's RMS.
    pub relative_sigma: bool,
    /// The scorer's loss.
    pub loss: LossKind,
    /// Epochs of the scorer.
    pub epochs: usize,
    /// Paths (or questions, listwise) per update.
    pub batch_size: usize,
    /// Peak learning rate of the scorer.
    pub learning_rate: f64,
    /// Bootstrap rounds.
    pub rounds: usize,
    /// Seed of the noise, the scorer and the bootstrap.
    pub seed: u64,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            output_dir: PathBuf::from("runs/prm-demo"),
            codi_experiment: PathBuf::from("runs/codi-experiment"),
            train_questions: 2000,
            test_questions: 500,
            train_paths: 8,
            test_paths: 16,
            sigma: 0.5,
            relative_sigma: true,
            loss: LossKind::Mse,
            epochs: 3,
            batch_size: 32,
            learning_rate: 3e-4,
            rounds: 200,
            seed: 42,
        }
    }
}

/// The demo's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    /// Settings.
    pub config: DemoConfig,
    /// The reasoner used.
    pub reasoner: PathBuf,
    /// Whether the demo trained it (else reused).
    pub trained_reasoner: bool,
    /// The training collection's metadata.
    pub train_collection: CollectionMeta,
    /// The scorer's training.
    pub training: TrainReport,
    /// The held-out evaluation.
    pub eval: EvalReport,
    /// Seconds spent per stage: reasoner, collection, scorer training, evaluation.
    pub stage_seconds: [f64; 4],
    /// Total wall time (s).
    pub seconds: f64,
}

/// The CODI model of the experiment in `cfg.codi_experiment`, trained there first when absent.
/// Returns its directory and whether it was trained now.
fn reasoner_dir<B: AutodiffBackend>(
    cfg: &DemoConfig,
    device: &B::Device,
    progress: bool,
) -> Result<(PathBuf, bool)> {
    let dir = cfg.codi_experiment.join("codi").join(FINAL_MODEL);
    let data = cfg.codi_experiment.join("data");
    if dir.join("codi.json").exists()
        && data.join("train.txt").exists()
        && data.join("test.txt").exists()
    {
        return Ok((dir, false));
    }
    let experiment = ExperimentConfig {
        output_dir: cfg.codi_experiment.clone(),
        ..ExperimentConfig::default()
    };
    let base = setup(&experiment)?;
    let test = load_problems(
        base.data.eval.as_ref().expect("set"),
        DataFormat::Icot,
        None,
    )?;
    let [_, (codi, _)] = train_cot_then_codi::<B>(&base, &experiment, &test, device, progress)?;
    Ok((codi.saved, true))
}

/// One of the demo's two collections.
struct Split<'a> {
    /// The question file.
    file: &'a Path,
    /// Questions used (the first ones).
    limit: usize,
    /// Paths per question.
    paths: usize,
    /// Output directory.
    out: &'a Path,
}

/// Collects the paths of `split`.
fn collect_from<B: AutodiffBackend>(
    reasoner: &Path,
    split: &Split<'_>,
    cfg: &DemoConfig,
    device: &B::Device,
    progress: bool,
) -> Result<CollectionMeta> {
    let Split {
        file,
        limit,
        paths,
        out,
    } = *split;
    let r =
        Reasoner::<B::InnerBackend>::load(reasoner, file, DataFormat::Icot, Some(limit), device)?;
    let sampling = SamplingConfig {
        paths_per_question: paths,
        sigma: cfg.sigma,
        relative_sigma: cfg.relative_sigma,
        seed: cfg.seed,
        ..SamplingConfig::default()
    };
    let inputs = CollectInputs {
        reasoner: &r.model,
        reasoner_dir: reasoner,
        latent_steps: r.latent_steps,
        tokenizer: &r.tokenizer,
        examples: &r.examples,
        questions_file: file,
    };
    collect(&inputs, &sampling, out, progress, None)
}

/// The scorer's run config in the demo.
pub fn scorer_config(cfg: &DemoConfig, reasoner: &Path) -> PrmRunConfig {
    PrmRunConfig {
        model: ModelSection {
            backbone: Some(reasoner.display().to_string()),
            ..ModelSection::default()
        },
        data: DataSection {
            train: cfg.output_dir.join("paths-train"),
            eval: None,
            max_seq_len: 512,
            max_train_questions: None,
            step_labels: false,
        },
        loss: cfg.loss,
        training: TrainingSection {
            output_dir: cfg.output_dir.join("scorer"),
            epochs: cfg.epochs,
            batch_size: cfg.batch_size,
            accumulation: 1,
            learning_rate: cfg.learning_rate,
            save_every_updates: 0,
            seed: cfg.seed,
            ..TrainingSection::default()
        },
    }
}

/// Runs the whole demo on `device`.
pub fn run_demo<B: AutodiffBackend>(
    cfg: &DemoConfig,
    device: &B::Device,
    progress: bool,
) -> Result<DemoReport> {
    let started = Instant::now();
    let (reasoner, trained_reasoner) = reasoner_dir::<B>(cfg, device, progress)?;
    let t_reasoner = started.elapsed().as_secs_f64();
    let data = cfg.codi_experiment.join("data");
    let (train_dir, test_dir) = (
        cfg.output_dir.join("paths-train"),
        cfg.output_dir.join("paths-test"),
    );
    let (train_file, test_file) = (data.join("train.txt"), data.join("test.txt"));
    let train_split = Split {
        file: &train_file,
        limit: cfg.train_questions,
        paths: cfg.train_paths,
        out: &train_dir,
    };
    let test_split = Split {
        file: &test_file,
        limit: cfg.test_questions,
        paths: cfg.test_paths,
        out: &test_dir,
    };
    // The two collections are independent: one per core.
    let (train_meta, test_meta) = beside(
        || collect_from::<B>(&reasoner, &train_split, cfg, device, progress),
        || collect_from::<B>(&reasoner, &test_split, cfg, device, false),
    );
    let (train_meta, _) = (train_meta?, test_meta?);
    let t_collect = started.elapsed().as_secs_f64();
    let run = scorer_config(cfg, &reasoner);
    let options = TrainOptions {
        resume: None,
        progress,
        stop: None,
    };
    let (model, training) = train::<B>(&run, &options, device)?;
    let t_train = started.elapsed().as_secs_f64();
    let test = PathSet::load(&test_dir)?;
    let ns: Vec<usize> = [1, 4, 16, 64]
        .into_iter()
        .filter(|&n| n <= cfg.test_paths)
        .collect();
    let eval = evaluate(
        &model.valid(),
        &test,
        cfg.loss,
        run.data.max_seq_len,
        &ns,
        cfg.rounds,
        cfg.seed,
    )?;
    eval.plot(&cfg.output_dir.join("best_of_n.png"))?;
    let seconds = started.elapsed().as_secs_f64();
    let report = DemoReport {
        config: cfg.clone(),
        reasoner,
        trained_reasoner,
        train_collection: train_meta,
        training,
        eval,
        stage_seconds: [
            t_reasoner,
            t_collect - t_reasoner,
            t_train - t_collect,
            seconds - t_train,
        ],
        seconds,
    };
    write_results(&cfg.output_dir, &report, &report.eval.markdown())?;
    Ok(report)
}
