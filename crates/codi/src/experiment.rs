//! The CPU-sized CODI experiment: on synthetic GSM8k-Aug-format arithmetic (from
//! `latent_datasets::synthetic::arithmetic`), train a tiny model from scratch with CoT-SFT, then
//! CODI initialised from it, and No-CoT-SFT with as many updates as the two together; evaluate all
//! three on held-out questions and tabulate accuracy, decoded tokens and wall time. Every phase
//! goes through the same drivers ([`crate::run`]) as the published-run configs. No-CoT-SFT, which
//! depends on neither of the others, trains on a second thread beside CoT-SFT → CODI.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use latent_core::model::NewRowInit;
use latent_core::train::{Precision, ScheduleKind};
use latent_datasets::batch::word_level_tokenizer;
use latent_datasets::synthetic::arithmetic::{ArithmeticConfig, ArithmeticGenerator, Op};
use latent_datasets::synthetic::Split;
use serde::Serialize;

use crate::config::{
    CodiRunConfig, DataFormat, DataSection, EmbeddingTraining, EvalSection, MethodSection,
    ModelSection, TrainingSection,
};
use crate::data::{prepare, Problem};
use crate::eval::{evaluate, EvalSummary};
use crate::loss::DistillLoss;
use crate::run::{
    build, load_problems, prep_config, train, training_examples, TrainOptions, TrainReport,
};
use crate::{CodiError, Result, Task};

/// Settings of the experiment (the defaults are the documented run).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExperimentConfig {
    /// Where data, models, logs and the table go.
    pub output_dir: PathBuf,
    /// Seed of data generation, initialisation and shuffling.
    pub seed: u64,
    /// Equations per problem.
    pub steps: usize,
    /// Largest operand (operands and the start value are drawn from 1..=this).
    pub operand_max: u64,
    /// Largest intermediate value.
    pub max_value: u64,
    /// Training problems.
    pub train_examples: usize,
    /// Held-out test problems.
    pub test_examples: usize,
    /// Model width.
    pub hidden: usize,
    /// Blocks.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Epochs of CoT-SFT.
    pub cot_epochs: usize,
    /// Epochs of CODI (from the CoT-SFT model).
    pub codi_epochs: usize,
    /// Examples per update.
    pub batch_size: usize,
    /// Peak learning rate of CoT-SFT and No-CoT-SFT.
    pub learning_rate: f64,
    /// Peak learning rate of CODI.
    pub codi_learning_rate: f64,
    /// Continuous thoughts.
    pub num_latent: usize,
    /// β.
    pub distill_loss_factor: f64,
    /// Training numerics of every run (`train.precision`).
    pub precision: Precision,
}

impl Default for ExperimentConfig {
    fn default() -> Self {
        Self {
            output_dir: PathBuf::from("runs/codi-experiment"),
            seed: 11,
            steps: 3,
            operand_max: 9,
            max_value: 40,
            train_examples: 8000,
            test_examples: 500,
            hidden: 128,
            layers: 4,
            heads: 4,
            cot_epochs: 3,
            codi_epochs: 2,
            batch_size: 32,
            learning_rate: 3e-3,
            codi_learning_rate: 1e-3,
            num_latent: 6,
            distill_loss_factor: 1.0,
            precision: Precision::F32,
        }
    }
}

/// One row of the result table.
#[derive(Debug, Clone, Serialize)]
pub struct ExperimentRow {
    /// Method.
    pub method: String,
    /// Test accuracy (%).
    pub accuracy: f64,
    /// Mean decoded tokens per question.
    pub tokens: f64,
    /// Continuous thoughts per question.
    pub latent_steps: f64,
    /// Optimizer updates of this phase.
    pub updates: usize,
    /// Training wall time (s).
    pub train_seconds: f64,
    /// Evaluation wall time per question (ms).
    pub eval_ms_per_question: f64,
}

/// The experiment's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ExperimentReport {
    /// Settings.
    pub config: ExperimentConfig,
    /// One row per method.
    pub rows: Vec<ExperimentRow>,
    /// Total wall time (s).
    pub seconds: f64,
}

impl ExperimentReport {
    /// The table in Markdown.
    pub fn markdown(&self) -> String {
        let mut s = String::from(
            "| method | accuracy (%) | decoded tokens | latent steps | updates | train time (s) | eval ms/question |\n|---|---|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            s.push_str(&format!(
                "| {} | {:.1} | {:.1} | {:.0} | {} | {:.0} | {:.1} |\n",
                r.method,
                r.accuracy,
                r.tokens,
                r.latent_steps,
                r.updates,
                r.train_seconds,
                r.eval_ms_per_question
            ));
        }
        s
    }
}

/// Writes `text` to `path`, creating its directory.
pub fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| CodiError::io(dir, e))?;
    }
    std::fs::write(path, text).map_err(|e| CodiError::io(path, e))
}

/// Writes a report as `results.json` (`report` serialised) and `results.md` (`markdown`) into `dir`.
pub fn write_results(dir: &Path, report: &impl Serialize, markdown: &str) -> Result<()> {
    write(
        &dir.join("results.json"),
        &serde_json::to_string_pretty(report).expect("json"),
    )?;
    write(&dir.join("results.md"), markdown)
}

/// The `config.json` of the experiment's tiny Llama: `vocab` rows, width `hidden`, `layers`
/// blocks, `heads` heads, tied embeddings, BOS 2 and EOS 3 (the ids of the word-level tokenizer).
pub fn tiny_llama_config(
    vocab: usize,
    hidden: usize,
    layers: usize,
    heads: usize,
) -> serde_json::Value {
    serde_json::json!({
        "model_type": "llama",
        "vocab_size": vocab,
        "hidden_size": hidden,
        "intermediate_size": hidden * 4,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": heads,
        "max_position_embeddings": 512,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "tie_word_embeddings": true,
        "initializer_range": 0.02,
        "bos_token_id": 2,
        "eos_token_id": 3
    })
}

/// Writes the data, tokenizer and tiny model config; returns the base run config of the phases
/// (CoT-SFT into `output_dir/cot_sft`).
pub fn setup(cfg: &ExperimentConfig) -> Result<CodiRunConfig> {
    let generator = ArithmeticGenerator::new(
        ArithmeticConfig {
            steps: cfg.steps,
            operand_min: 1,
            operand_max: cfg.operand_max,
            operators: vec![Op::Add, Op::Sub],
            max_value: cfg.max_value,
            ..ArithmeticConfig::default()
        },
        cfg.seed,
    )?;
    let train_lines = generator.generate(Split::Train, cfg.train_examples);
    let test_lines = generator.generate(Split::Test, cfg.test_examples);
    let dir = &cfg.output_dir;
    let data_dir = dir.join("data");
    write(
        &data_dir.join("train.txt"),
        &(train_lines.join("\n") + "\n"),
    )?;
    write(&data_dir.join("test.txt"), &(test_lines.join("\n") + "\n"))?;
    let numbers: Vec<String> = (0..=cfg.max_value).map(|n| n.to_string()).collect();
    let mut texts: Vec<&str> = vec!["The answer is: 0"];
    texts.extend(numbers.iter().map(String::as_str));
    texts.extend(train_lines.iter().map(String::as_str));
    texts.extend(test_lines.iter().map(String::as_str));
    let tokenizer = word_level_tokenizer(texts)?;
    let tokenizer_path = dir.join("tokenizer.json");
    tokenizer
        .save(&tokenizer_path, false)
        .map_err(|e| CodiError::Tokenizer(format!("saving {}: {e}", tokenizer_path.display())))?;
    let vocab = tokenizer.get_vocab_size(true);
    let model_config = tiny_llama_config(vocab, cfg.hidden, cfg.layers, cfg.heads);
    let model_path = dir.join("model_config.json");
    write(
        &model_path,
        &serde_json::to_string_pretty(&model_config).expect("json"),
    )?;
    Ok(CodiRunConfig {
        model: ModelSection {
            name_or_path: None,
            config: Some(model_path),
            tokenizer: Some(tokenizer_path),
            dtype: "f32".into(),
            add_bos: false,
            pad_token_id: Some(0),
            eos_token_id: Some(3),
        },
        method: MethodSection {
            task: Task::CotSft,
            num_latent: cfg.num_latent,
            use_prj: None,
            prj_dim: None,
            prj_no_ln: None,
            prj_dropout: 0.0,
            distill_loss_factor: cfg.distill_loss_factor,
            ref_loss_factor: 1.0,
            distill_loss_type: DistillLoss::SmoothL1,
            reference_masking: false,
            embeddings: EmbeddingTraining::All,
            new_token_init: NewRowInit::Random,
            answer_prefix: "The answer is: ".into(),
            restore_from: None,
        },
        lora: None,
        data: DataSection {
            train: Some(data_dir.join("train.txt")),
            train_format: DataFormat::Icot,
            eval: Some(data_dir.join("test.txt")),
            eval_format: DataFormat::Icot,
            keep_last_step: false,
            max_token_num: None,
            max_train_samples: None,
            max_eval_samples: None,
        },
        training: TrainingSection {
            output_dir: dir.join("cot_sft"),
            epochs: cfg.cot_epochs,
            per_device_batch_size: cfg.batch_size,
            effective_batch_size: cfg.batch_size,
            learning_rate: cfg.learning_rate,
            weight_decay: 0.1,
            warmup_ratio: 0.03,
            schedule: ScheduleKind::Cosine,
            max_grad_norm: Some(2.0),
            seed: cfg.seed,
            save_every_updates: 0,
            keep_last: 1,
            device: "cpu".into(),
            precision: cfg.precision,
            checkpointing: false,
        },
        eval: EvalSection {
            batch_size: 100,
            max_new_tokens: 64,
            probe_examples: 3,
            probe_top_k: 3,
        },
    })
}

/// Trains one phase and evaluates it on the test problems.
pub fn phase<B: AutodiffBackend>(
    run: &CodiRunConfig,
    test: &[Problem],
    device: &B::Device,
    progress: bool,
) -> Result<(TrainReport, EvalSummary)> {
    let built = build::<B>(run, device)?;
    let prep = prep_config(run, &built.meta, built.model.lm.config());
    let (examples, _) = training_examples(run, &built)?;
    let (test_examples, _) = prepare(test, &built.tokenizer, &prep)?;
    let tokenizer = built.tokenizer.clone();
    let num_latent = built.meta.num_latent;
    let options = TrainOptions {
        resume: false,
        progress,
        stop: None,
    };
    let (model, report) = train::<B>(run, built, &examples, &options)?;
    let model = model.valid();
    let eval = run.eval_config(num_latent);
    let summary = evaluate(
        &model,
        run.method.task,
        &tokenizer,
        &test_examples,
        &eval,
        |_| {},
    )?;
    let path = run.training.output_dir.join("eval.json");
    write(
        &path,
        &serde_json::to_string_pretty(&summary).expect("json"),
    )?;
    Ok((report, summary))
}

/// The CODI phase: from the CoT-SFT model saved at `cot_model`, into `output_dir/codi`.
pub fn codi_run(base: &CodiRunConfig, cfg: &ExperimentConfig, cot_model: &Path) -> CodiRunConfig {
    let mut codi = base.clone();
    codi.method.task = Task::Codi;
    codi.method.restore_from = Some(cot_model.to_path_buf());
    codi.training.epochs = cfg.codi_epochs;
    codi.training.learning_rate = cfg.codi_learning_rate;
    codi.training.output_dir = cfg.output_dir.join("codi");
    codi
}

fn row(report: &TrainReport, eval: &EvalSummary) -> ExperimentRow {
    ExperimentRow {
        method: report.task.label().into(),
        accuracy: 100.0 * eval.accuracy,
        tokens: eval.mean_tokens,
        latent_steps: eval.mean_latent_steps,
        updates: report.updates,
        train_seconds: report.seconds,
        eval_ms_per_question: 1000.0 * eval.seconds_per_example,
    }
}

/// Runs `main` on this thread while `side` runs on a second one; returns both results (a panic
/// on the side thread is resumed here).
pub fn beside<M, S: Send>(main: impl FnOnce() -> M, side: impl FnOnce() -> S + Send) -> (M, S) {
    std::thread::scope(|scope| {
        let handle = scope.spawn(side);
        let main = main();
        let side = handle
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (main, side)
    })
}

/// CoT-SFT from `base`, then CODI from its model (each trained and evaluated on `test`).
pub fn train_cot_then_codi<B: AutodiffBackend>(
    base: &CodiRunConfig,
    cfg: &ExperimentConfig,
    test: &[Problem],
    device: &B::Device,
    progress: bool,
) -> Result<[(TrainReport, EvalSummary); 2]> {
    let cot = phase::<B>(base, test, device, progress)?;
    let codi = phase::<B>(&codi_run(base, cfg, &cot.0.saved), test, device, progress)?;
    Ok([cot, codi])
}

/// CoT-SFT, then CODI from its model; their table rows.
fn cot_then_codi<B: AutodiffBackend>(
    base: &CodiRunConfig,
    cfg: &ExperimentConfig,
    test: &[Problem],
    device: &B::Device,
    progress: bool,
) -> Result<Vec<ExperimentRow>> {
    let phases = train_cot_then_codi::<B>(base, cfg, test, device, progress)?;
    Ok(phases.iter().map(|(r, e)| row(r, e)).collect())
}

/// Runs the whole experiment on `device`, printing each phase's result as it lands.
pub fn run_experiment<B: AutodiffBackend>(
    cfg: &ExperimentConfig,
    device: &B::Device,
    progress: bool,
) -> Result<ExperimentReport> {
    let start = Instant::now();
    let base = setup(cfg)?;
    let test = load_problems(
        base.data.eval.as_ref().expect("set"),
        DataFormat::Icot,
        None,
    )?;
    let mut no_cot = base.clone();
    no_cot.method.task = Task::NoCotSft;
    no_cot.training.epochs = cfg.cot_epochs + cfg.codi_epochs;
    no_cot.training.output_dir = cfg.output_dir.join("no_cot_sft");

    // No-CoT-SFT does not depend on the other two phases: it trains on a second thread (Flex runs
    // most operations of these small models on one core, so the two share a 2-core machine
    // without slowing each other much). Its progress bar is hidden.
    let (rows, no_cot_result) = beside(
        || cot_then_codi::<B>(&base, cfg, &test, device, progress),
        || phase::<B>(&no_cot, &test, device, false),
    );
    let mut rows = rows?;
    let (no_cot_report, no_cot_eval) = no_cot_result?;
    rows.push(row(&no_cot_report, &no_cot_eval));

    let report = ExperimentReport {
        config: cfg.clone(),
        rows,
        seconds: start.elapsed().as_secs_f64(),
    };
    write_results(&cfg.output_dir, &report, &report.markdown())?;
    Ok(report)
}
