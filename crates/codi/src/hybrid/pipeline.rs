//! The CPU-sized hybrid pipeline (README main job): on the synthetic arithmetic of
//! [`crate::experiment`], train a tiny model with CoT-SFT, then CODI from it, generate Phase 1
//! hybrid data with the CoT-SFT model, train Phase 2 from the CODI model, and evaluate the Phase 2
//! model in every decoding mode (and the CoT-SFT and CODI models as references). Writes
//! `results.md`, `results.json` and `accuracy_vs_tokens.png` (accuracy against mean written
//! tokens, one marker per mode, the random modes joined by a line).

use std::path::Path;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use plotters::prelude::*;
use serde::Serialize;

use super::controller::{BaselineMode, ControllerConfig};
use super::decode::{evaluate_hybrid, HybridSummary};
use super::phase1::{run_phase1, Phase1Config, Phase1Summary};
use super::phase2::run_phase2;
use crate::config::DataFormat;
use crate::data::prepare;
use crate::eval::{EvalConfig, EvalSummary};
use crate::experiment::{beside, codi_run, phase, setup, write, write_results, ExperimentConfig};
use crate::run::{load_problems, prep_config, TrainOptions};
use crate::{CodiError, Result};

/// Settings of the pipeline (the defaults are the documented run).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineConfig {
    /// Data, model and the CoT-SFT / CODI phases (the No-CoT baseline is not run).
    pub experiment: ExperimentConfig,
    /// Phase 1.
    pub phase1: Phase1Config,
    /// Phase 2 epochs (from the CODI model).
    pub phase2_epochs: usize,
    /// Phase 2 peak learning rate.
    pub phase2_learning_rate: f64,
    /// Share of Phase 2 samples trained as pure CoT each epoch.
    pub hybrid_cot_only_ratio: f64,
    /// The adaptive controller (its mode is set per evaluation).
    pub controller: ControllerConfig,
    /// Random mode: the probabilities of an explicit step evaluated.
    pub random_probabilities: Vec<f64>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            // The data, model and CoT-SFT / CODI recipe of the CODI experiment.
            experiment: ExperimentConfig {
                output_dir: "runs/codi-hybrid".into(),
                ..ExperimentConfig::default()
            },
            // Three thoughts per replaced step: the task keeps two CoT steps, so an all-latent
            // sample has CODI's 6 thoughts, as the latent decoding mode feeds.
            phase1: Phase1Config {
                latents_per_step: 3,
                ..Phase1Config::default()
            },
            phase2_epochs: 2,
            phase2_learning_rate: 1e-3,
            hybrid_cot_only_ratio: 0.2,
            controller: ControllerConfig::default(),
            random_probabilities: vec![0.25, 0.5, 0.75, 0.9],
        }
    }
}

/// One row of the result table.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineRow {
    /// Which model.
    pub model: String,
    /// Decoding mode (with its parameter for random).
    pub mode: String,
    /// Test accuracy (%).
    pub accuracy: f64,
    /// Mean written tokens per question.
    pub tokens: f64,
    /// Mean thoughts per question.
    pub latent_steps: f64,
    /// Mean mode switches per question.
    pub switches: f64,
    /// Evaluation wall time (s).
    pub seconds: f64,
}

/// The pipeline's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineReport {
    /// Settings.
    pub config: PipelineConfig,
    /// Phase 1 statistics.
    pub phase1: Phase1Summary,
    /// Training wall time per phase (s): CoT-SFT, CODI, Phase 1, Phase 2.
    pub phase_seconds: [f64; 4],
    /// The table.
    pub rows: Vec<PipelineRow>,
    /// Total wall time (s).
    pub seconds: f64,
}

impl PipelineReport {
    /// The table in Markdown.
    pub fn markdown(&self) -> String {
        let mut s = String::from(
            "| model | mode | accuracy (%) | written tokens | latent steps | switches | eval time (s) |\n|---|---|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            s.push_str(&format!(
                "| {} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.1} |\n",
                r.model, r.mode, r.accuracy, r.tokens, r.latent_steps, r.switches, r.seconds
            ));
        }
        s
    }
}

fn plain_row(model: &str, mode: &str, e: &EvalSummary) -> PipelineRow {
    PipelineRow {
        model: model.into(),
        mode: mode.into(),
        accuracy: 100.0 * e.accuracy,
        tokens: e.mean_tokens,
        latent_steps: e.mean_latent_steps,
        switches: if e.mean_latent_steps > 0.0 { 2.0 } else { 0.0 },
        seconds: e.seconds,
    }
}

fn hybrid_row(mode: String, s: &HybridSummary) -> PipelineRow {
    PipelineRow {
        model: "hybrid (Phase 2)".into(),
        mode,
        accuracy: 100.0 * s.accuracy,
        tokens: s.mean_tokens,
        latent_steps: s.mean_latent_steps,
        switches: s.mean_switches,
        seconds: s.seconds,
    }
}

/// Runs the pipeline on `device`, printing each stage's result as it lands.
pub fn run_pipeline<B: AutodiffBackend>(
    cfg: &PipelineConfig,
    device: &B::Device,
    progress: bool,
) -> Result<PipelineReport> {
    let start = Instant::now();
    let e = &cfg.experiment;
    let base = setup(e)?;
    let test = load_problems(
        base.data.eval.as_ref().expect("set"),
        DataFormat::Icot,
        None,
    )?;
    let mut rows = Vec::new();

    let (cot_report, cot_eval) = phase::<B>(&base, &test, device, progress)?;
    rows.push(plain_row("CoT-SFT", "explicit", &cot_eval));

    // CODI and Phase 1 both start from the CoT-SFT model and not from each other: Phase 1 (entropy
    // scoring, inference only) runs on a second thread while CODI trains.
    let codi = codi_run(&base, e, &cot_report.saved);
    let train_path = base.data.train.clone().expect("set");
    let hybrid_path = e
        .output_dir
        .join("hybrid")
        .join("hybrid_training_data.json");
    let (codi_result, phase1_result) = beside(
        || phase::<B>(&codi, &test, device, progress),
        || -> Result<(Phase1Summary, f64)> {
            let phase1_start = Instant::now();
            let train = load_problems(&train_path, DataFormat::Icot, None)?;
            // Inference only: the inner backend, so that no autodiff graph is recorded.
            let summary = run_phase1::<B::InnerBackend>(
                &cot_report.saved,
                &train,
                " ",
                &cfg.phase1,
                &hybrid_path,
                &train_path.display().to_string(),
                device,
            )?;
            Ok((summary, phase1_start.elapsed().as_secs_f64()))
        },
    );
    let (codi_report, codi_eval) = codi_result?;
    rows.push(plain_row("CODI", "latent", &codi_eval));
    let (phase1, phase1_seconds) = phase1_result?;

    let mut hybrid = codi.clone();
    hybrid.method.restore_from = Some(codi_report.saved.clone());
    hybrid.training.epochs = cfg.phase2_epochs;
    hybrid.training.learning_rate = cfg.phase2_learning_rate;
    hybrid.training.output_dir = e.output_dir.join("hybrid_codi");
    let options = TrainOptions {
        resume: false,
        progress,
        stop: None,
    };
    let (model, report) = run_phase2::<B>(
        &hybrid,
        &hybrid_path,
        cfg.hybrid_cot_only_ratio,
        &options,
        device,
    )?;
    let model = model.valid();
    let tokenizer = tokenizer_of(&report.saved)?;
    let prep = prep_config(
        &hybrid,
        &crate::model::read_meta(&report.saved)?,
        model.lm.config(),
    );
    let (examples, _) = prepare(&test, &tokenizer, &prep)?;
    let eval = EvalConfig {
        batch_size: hybrid.eval.batch_size,
        max_new_tokens: hybrid.eval.max_new_tokens,
        num_latent: e.num_latent,
        ..EvalConfig::default()
    };
    let mut modes: Vec<(String, ControllerConfig)> = [
        BaselineMode::Explicit,
        BaselineMode::Latent,
        BaselineMode::Adaptive,
    ]
    .into_iter()
    .map(|mode| {
        (
            mode.name().to_string(),
            ControllerConfig {
                mode,
                num_latent: e.num_latent,
                ..cfg.controller
            },
        )
    })
    .collect();
    for &p in &cfg.random_probabilities {
        modes.push((
            format!("random p={p}"),
            ControllerConfig {
                mode: BaselineMode::Random,
                explicit_probability: p,
                num_latent: e.num_latent,
                ..cfg.controller
            },
        ));
    }
    let mut summaries = Vec::new();
    for (name, controller) in modes {
        let s = evaluate_hybrid(&model, &tokenizer, &examples, &eval, &controller, |_| {})?;
        rows.push(hybrid_row(name, &s));
        summaries.push(s);
    }
    write(
        &report.saved.join("eval_hybrid.json"),
        &serde_json::to_string_pretty(&summaries).expect("json"),
    )?;
    let out = PipelineReport {
        config: cfg.clone(),
        phase1,
        phase_seconds: [
            cot_report.seconds,
            codi_report.seconds,
            phase1_seconds,
            report.seconds,
        ],
        rows,
        seconds: start.elapsed().as_secs_f64(),
    };
    write_results(&e.output_dir, &out, &out.markdown())?;
    plot(&e.output_dir.join("accuracy_vs_tokens.png"), &out.rows)?;
    Ok(out)
}

/// The tokenizer saved with a model.
fn tokenizer_of(dir: &Path) -> Result<tokenizers::Tokenizer> {
    latent_core::hf::tokenizer::load_tokenizer(dir.join("model/tokenizer.json")).map_err(Into::into)
}

/// Accuracy (y) against written tokens (x): one marker per row, random rows joined by a line.
/// No text is drawn (no fonts needed); the values are in `results.md`.
pub fn plot(path: &Path, rows: &[PipelineRow]) -> Result<()> {
    let fail = |e: String| CodiError::io(path, std::io::Error::other(e));
    let x1 = rows.iter().map(|r| r.tokens).fold(1.0, f64::max) * 1.05;
    let root = BitMapBackend::new(path, (640, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .margin(16)
        .build_cartesian_2d(0.0..x1, 0.0..100.0)
        .map_err(|e| fail(e.to_string()))?;
    chart
        .plotting_area()
        .draw(&Rectangle::new(
            [(0.0, 0.0), (x1, 100.0)],
            BLACK.stroke_width(1),
        ))
        .map_err(|e| fail(e.to_string()))?;
    let colour = |r: &PipelineRow| match (r.model.as_str(), r.mode.as_str()) {
        ("CoT-SFT", _) | ("CODI", _) => RGBColor(127, 127, 127),
        (_, "explicit") => RGBColor(31, 119, 180),
        (_, "latent") => RGBColor(44, 160, 44),
        (_, "adaptive") => RGBColor(214, 39, 40),
        _ => RGBColor(255, 127, 14),
    };
    let random: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r.mode.starts_with("random"))
        .map(|r| (r.tokens, r.accuracy))
        .collect();
    let mut random = random;
    random.sort_by(|a, b| a.0.total_cmp(&b.0));
    chart
        .draw_series(LineSeries::new(
            random,
            RGBColor(255, 127, 14).stroke_width(2),
        ))
        .map_err(|e| fail(e.to_string()))?;
    chart
        .draw_series(
            rows.iter()
                .map(|r| Circle::new((r.tokens, r.accuracy), 6, colour(r).filled())),
        )
        .map_err(|e| fail(e.to_string()))?;
    root.present().map_err(|e| fail(e.to_string()))
}
