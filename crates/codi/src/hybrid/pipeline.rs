//! The CPU-sized hybrid pipeline (README main job): on the synthetic arithmetic of
//! [`crate::experiment`], train a tiny model with CoT-SFT, then CODI from it, generate Phase 1
//! hybrid data with the CoT-SFT model, train Phase 2 from the CODI model, and evaluate the Phase 2
//! model in every decoding mode (and the CoT-SFT and CODI models as references), once per seed.
//! Writes `results.md` (every row as mean ± standard deviation over the seeds, the comparisons
//! of the adaptive modes with the straight line between the pure modes and with random switching
//! at an equal token budget, and each seed's table), `results.json` and `accuracy_vs_tokens.png`
//! (accuracy against mean written tokens, one marker per model and mode, the random modes joined
//! by a line, with axes, title and legend); each seed's models and evaluations go to `seed-<s>/`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use latent_core::train::plot::{Plot, Series, Style};
use serde::{Deserialize, Serialize};

use super::controller::{BaselineMode, ControllerConfig, SwitchRule};
use super::decode::{evaluate_hybrid, HybridSummary};
use super::phase1::{entropy_plans, run_phase1, Phase1Config, Phase1Summary};
use super::phase2::{run_phase2, HybridTraining};
use super::schema::{read_hybrid_file, write_hybrid_file, Segment, Strategy};
use crate::config::{CodiRunConfig, DataFormat};
use crate::data::{prepare, Problem};
use crate::eval::EvalConfig;
use crate::experiment::{beside, codi_run, phase, setup, write, write_results, ExperimentConfig};
use crate::model::CodiModel;
use crate::run::{load_problems, prep_config, TrainOptions};
use crate::{CodiError, Result};

/// Settings of the pipeline (the defaults are the documented run).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineConfig {
    /// Data, model and the CoT-SFT / CODI phases (the No-CoT baseline is not run); its seed and
    /// output directory are replaced per seed.
    pub experiment: ExperimentConfig,
    /// Seeds (data, initialisation, shuffling, random modes): one full run each.
    pub seeds: Vec<u64>,
    /// Reuse a seed's CoT-SFT and CODI models when its directory has them (same settings assumed).
    pub reuse_models: bool,
    /// Seeds run at the same time (the models are small: one core each, mostly).
    pub parallel_seeds: usize,
    /// Phase 1.
    pub phase1: Phase1Config,
    /// Phase 2 epochs (from the CODI model).
    pub phase2_epochs: usize,
    /// Phase 2 peak learning rate.
    pub phase2_learning_rate: f64,
    /// Phase 2's cot-only share and `<eot>` alignment.
    pub hybrid: HybridTraining,
    /// The controller (its mode, rule and parameters are set per evaluation).
    pub controller: ControllerConfig,
    /// Adaptive mode (step rule): the `<bot>` thresholds evaluated.
    pub bot_thresholds: Vec<f32>,
    /// Also evaluate the spec's entropy rule.
    pub entropy_rule: bool,
    /// The code-path control: Phase 2 on every sample made all-latent (`max_latent_steps`
    /// thoughts after the question, no switch labels) and no cot-only rows, i.e. plain CODI
    /// continued for Phase 2's updates.
    pub control_all_latent: bool,
    /// Random mode (step rule): the probabilities of an explicit step evaluated.
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
            seeds: vec![11, 12, 13],
            reuse_models: false,
            parallel_seeds: std::thread::available_parallelism().map_or(1, |n| n.get()),
            // Three thoughts per replaced step: the task keeps two CoT steps, so an all-latent
            // sample has CODI's 6 thoughts, as the latent decoding mode feeds.
            phase1: Phase1Config {
                latents_per_step: 3,
                ..Phase1Config::default()
            },
            phase2_epochs: 1,
            phase2_learning_rate: 3e-4,
            hybrid: HybridTraining::default(),
            controller: ControllerConfig::default(),
            bot_thresholds: vec![0.5, 0.3, 0.1],
            entropy_rule: true,
            control_all_latent: false,
            random_probabilities: vec![0.25, 0.5, 0.75],
        }
    }
}

/// One row of a seed's table.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineRow {
    /// Which model.
    pub model: String,
    /// Decoding mode (with its parameter).
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

/// A row over the seeds: mean and standard deviation (n − 1) of each column.
#[derive(Debug, Clone, Serialize)]
pub struct AggregateRow {
    /// Which model.
    pub model: String,
    /// Decoding mode.
    pub mode: String,
    /// Seeds.
    pub seeds: usize,
    /// Accuracy (%): mean, sd.
    pub accuracy: [f64; 2],
    /// Written tokens: mean, sd.
    pub tokens: [f64; 2],
    /// Thoughts: mean, sd.
    pub latent_steps: [f64; 2],
    /// Switches: mean, sd.
    pub switches: [f64; 2],
}

/// An adaptive mode against the pure modes' straight line and random switching at its token
/// budget (accuracy points, per seed, then mean and standard error over the seeds).
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The adaptive mode.
    pub mode: String,
    /// Per seed: accuracy minus the line from (latent tokens, latent accuracy) to (explicit
    /// tokens, explicit accuracy) at the mode's tokens.
    pub above_line: Vec<f64>,
    /// Per seed: accuracy minus random switching's, linearly interpolated between the random
    /// modes (and the pure modes as its ends) at the mode's tokens.
    pub above_random: Vec<f64>,
    /// Mean and standard error of `above_line`.
    pub above_line_mean_se: [f64; 2],
    /// Mean and standard error of `above_random`.
    pub above_random_mean_se: [f64; 2],
}

/// One seed's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct SeedReport {
    /// The seed.
    pub seed: u64,
    /// Phase 1 statistics.
    pub phase1: Phase1Summary,
    /// Training wall time per phase (s): CoT-SFT, CODI, Phase 1, Phase 2 (0 for a reused model).
    pub phase_seconds: [f64; 4],
    /// The table.
    pub rows: Vec<PipelineRow>,
}

/// The pipeline's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineReport {
    /// Settings.
    pub config: PipelineConfig,
    /// Every seed.
    pub seeds: Vec<SeedReport>,
    /// The table over the seeds.
    pub rows: Vec<AggregateRow>,
    /// The adaptive modes against the line and random switching.
    pub comparisons: Vec<Comparison>,
    /// Total wall time (s).
    pub seconds: f64,
}

fn seed_table(rows: &[PipelineRow]) -> String {
    let mut s = String::from(
        "| model | mode | accuracy (%) | written tokens | latent steps | switches | eval time (s) |\n|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.1} |\n",
            r.model, r.mode, r.accuracy, r.tokens, r.latent_steps, r.switches, r.seconds
        ));
    }
    s
}

impl PipelineReport {
    /// The tables in Markdown: over the seeds, the comparisons, then each seed's.
    pub fn markdown(&self) -> String {
        let n = self.seeds.len();
        let mut s = format!(
            "Mean ± standard deviation over {n} seed(s) ({}).\n\n| model | mode | accuracy (%) | written tokens | latent steps | switches |\n|---|---|---|---|---|---|\n",
            self.seeds.iter().map(|r| r.seed.to_string()).collect::<Vec<_>>().join(", ")
        );
        for r in &self.rows {
            s.push_str(&format!(
                "| {} | {} | {:.1} ± {:.1} | {:.2} ± {:.2} | {:.2} ± {:.2} | {:.2} ± {:.2} |\n",
                r.model,
                r.mode,
                r.accuracy[0],
                r.accuracy[1],
                r.tokens[0],
                r.tokens[1],
                r.latent_steps[0],
                r.latent_steps[1],
                r.switches[0],
                r.switches[1]
            ));
        }
        s.push_str(
            "\nAdaptive modes: accuracy points above the straight line between the pure latent and pure explicit modes, and above random switching at the same written tokens (mean ± standard error over the seeds; per seed in brackets).\n\n| mode | above the line | above random |\n|---|---|---|\n",
        );
        let list = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:+.1}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for c in &self.comparisons {
            s.push_str(&format!(
                "| {} | {:+.1} ± {:.1} [{}] | {:+.1} ± {:.1} [{}] |\n",
                c.mode,
                c.above_line_mean_se[0],
                c.above_line_mean_se[1],
                list(&c.above_line),
                c.above_random_mean_se[0],
                c.above_random_mean_se[1],
                list(&c.above_random)
            ));
        }
        for seed in &self.seeds {
            s.push_str(&format!(
                "\nSeed {} (phase times (s): CoT-SFT {:.0}, CODI {:.0}, Phase 1 {:.0}, Phase 2 {:.0}; Phase 1: {:.2} thoughts and {:.2} runs per sample, threshold {:.4} nats):\n\n",
                seed.seed,
                seed.phase_seconds[0],
                seed.phase_seconds[1],
                seed.phase_seconds[2],
                seed.phase_seconds[3],
                seed.phase1.mean_thoughts,
                seed.phase1.mean_runs,
                seed.phase1.threshold
            ));
            s.push_str(&seed_table(&seed.rows));
        }
        s
    }
}

/// Mean and standard deviation (n − 1; 0 for one value).
pub fn mean_sd(values: &[f64]) -> [f64; 2] {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n.max(1.0);
    if values.len() < 2 {
        return [mean, 0.0];
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    [mean, var.sqrt()]
}

/// Mean and standard error.
fn mean_se(values: &[f64]) -> [f64; 2] {
    let [mean, sd] = mean_sd(values);
    [mean, sd / (values.len() as f64).sqrt().max(1.0)]
}

/// Linear interpolation of `points` (tokens, accuracy) at `x` (clamped to the ends).
pub fn interpolate(points: &[(f64, f64)], x: f64) -> f64 {
    let mut p = points.to_vec();
    p.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (first, last) = (p[0], p[p.len() - 1]);
    if x <= first.0 {
        return first.1;
    }
    if x >= last.0 {
        return last.1;
    }
    let i = p.iter().position(|q| q.0 >= x).expect("inside the range");
    let (a, b) = (p[i - 1], p[i]);
    if b.0 == a.0 {
        return b.1.max(a.1);
    }
    a.1 + (b.1 - a.1) * (x - a.0) / (b.0 - a.0)
}

const HYBRID: &str = "hybrid (Phase 2)";

/// The rows over the seeds, in the first seed's order.
fn aggregate(seeds: &[SeedReport]) -> Vec<AggregateRow> {
    let Some(first) = seeds.first() else {
        return Vec::new();
    };
    first
        .rows
        .iter()
        .map(|r| {
            let same: Vec<&PipelineRow> = seeds
                .iter()
                .filter_map(|s| {
                    s.rows
                        .iter()
                        .find(|x| x.model == r.model && x.mode == r.mode)
                })
                .collect();
            let col = |f: fn(&PipelineRow) -> f64| {
                mean_sd(&same.iter().map(|x| f(x)).collect::<Vec<_>>())
            };
            AggregateRow {
                model: r.model.clone(),
                mode: r.mode.clone(),
                seeds: same.len(),
                accuracy: col(|x| x.accuracy),
                tokens: col(|x| x.tokens),
                latent_steps: col(|x| x.latent_steps),
                switches: col(|x| x.switches),
            }
        })
        .collect()
}

/// Each adaptive mode of the hybrid model against the line and the random curve, per seed.
fn compare(seeds: &[SeedReport]) -> Vec<Comparison> {
    let Some(first) = seeds.first() else {
        return Vec::new();
    };
    let adaptive: Vec<String> = first
        .rows
        .iter()
        .filter(|r| {
            r.model == HYBRID && (r.mode.starts_with("adaptive") || r.mode.starts_with("planned"))
        })
        .map(|r| r.mode.clone())
        .collect();
    adaptive
        .into_iter()
        .map(|mode| {
            let mut above_line = Vec::new();
            let mut above_random = Vec::new();
            for s in seeds {
                let get = |m: &str| s.rows.iter().find(|r| r.model == HYBRID && r.mode == m);
                let (Some(a), Some(e), Some(l)) = (get(&mode), get("explicit"), get("latent"))
                else {
                    continue;
                };
                let point = |r: &PipelineRow| (r.tokens, r.accuracy);
                above_line.push(a.accuracy - interpolate(&[point(l), point(e)], a.tokens));
                let mut random: Vec<(f64, f64)> = s
                    .rows
                    .iter()
                    .filter(|r| r.model == HYBRID && r.mode.starts_with("random"))
                    .map(point)
                    .collect();
                random.extend([point(l), point(e)]);
                above_random.push(a.accuracy - interpolate(&random, a.tokens));
            }
            Comparison {
                above_line_mean_se: mean_se(&above_line),
                above_random_mean_se: mean_se(&above_random),
                mode,
                above_line,
                above_random,
            }
        })
        .collect()
}

/// What a trained phase left for the table; saved as `phase.json` in its output directory so
/// that `reuse_models` can skip it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PhaseRecord {
    saved: PathBuf,
    train_seconds: f64,
    accuracy: f64,
    tokens: f64,
    latent_steps: f64,
    eval_seconds: f64,
}

impl PhaseRecord {
    fn row(&self, model: &str, mode: &str) -> PipelineRow {
        PipelineRow {
            model: model.into(),
            mode: mode.into(),
            accuracy: 100.0 * self.accuracy,
            tokens: self.tokens,
            latent_steps: self.latent_steps,
            switches: if self.latent_steps > 0.0 { 2.0 } else { 0.0 },
            seconds: self.eval_seconds,
        }
    }
}

/// Trains and evaluates one phase, or reads what a previous run left (with `reuse`).
fn phase_or_reuse<B: AutodiffBackend>(
    run: &CodiRunConfig,
    test: &[Problem],
    device: &B::Device,
    progress: bool,
    reuse: bool,
) -> Result<PhaseRecord> {
    let path = run.training.output_dir.join("phase.json");
    if reuse && path.exists() {
        let text = std::fs::read_to_string(&path).map_err(|e| CodiError::io(&path, e))?;
        let record: PhaseRecord =
            serde_json::from_str(&text).map_err(|e| CodiError::Checkpoint {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        if record.saved.join("codi.json").exists() {
            return Ok(PhaseRecord {
                train_seconds: 0.0,
                ..record
            });
        }
    }
    let (report, eval) = phase::<B>(run, test, device, progress)?;
    let record = PhaseRecord {
        saved: report.saved,
        train_seconds: report.seconds,
        accuracy: eval.accuracy,
        tokens: eval.mean_tokens,
        latent_steps: eval.mean_latent_steps,
        eval_seconds: eval.seconds,
    };
    write(&path, &serde_json::to_string_pretty(&record).expect("json"))?;
    Ok(record)
}

/// The evaluations of the Phase 2 model: name and controller of each.
fn modes(
    cfg: &PipelineConfig,
    num_latent: usize,
    latents_per_step: usize,
) -> Vec<(String, ControllerConfig)> {
    let base = ControllerConfig {
        num_latent,
        latents_per_step,
        rule: SwitchRule::Step,
        ..cfg.controller
    };
    let with = |mode| ControllerConfig { mode, ..base };
    let mut out = vec![
        ("explicit".to_string(), with(BaselineMode::Explicit)),
        ("latent".to_string(), with(BaselineMode::Latent)),
        ("planned (oracle)".to_string(), with(BaselineMode::Planned)),
    ];
    for &t in &cfg.bot_thresholds {
        out.push((
            format!("adaptive τ={t}"),
            ControllerConfig {
                bot_threshold: t,
                ..with(BaselineMode::Adaptive)
            },
        ));
    }
    if cfg.entropy_rule {
        out.push((
            "adaptive (spec entropy rule)".to_string(),
            ControllerConfig {
                rule: SwitchRule::Entropy,
                ..with(BaselineMode::Adaptive)
            },
        ));
    }
    for &p in &cfg.random_probabilities {
        out.push((
            format!("random p={p}"),
            ControllerConfig {
                explicit_probability: p,
                ..with(BaselineMode::Random)
            },
        ));
    }
    out
}

/// One seed: CoT-SFT → CODI ‖ Phase 1 → Phase 2 → every mode.
fn run_seed<B: AutodiffBackend>(
    cfg: &PipelineConfig,
    e: &ExperimentConfig,
    device: &B::Device,
    progress: bool,
) -> Result<SeedReport> {
    let base = setup(e)?;
    let test = load_problems(
        base.data.eval.as_ref().expect("set"),
        DataFormat::Icot,
        None,
    )?;
    let mut rows = Vec::new();
    let cot = phase_or_reuse::<B>(&base, &test, device, progress, cfg.reuse_models)?;
    rows.push(cot.row("CoT-SFT", "explicit"));

    // CODI and Phase 1 both start from the CoT-SFT model and not from each other: Phase 1 (entropy
    // scoring, inference only) runs on a second thread while CODI trains.
    let codi = codi_run(&base, e, &cot.saved);
    let train_path = base.data.train.clone().expect("set");
    let hybrid_path = e
        .output_dir
        .join("hybrid")
        .join("hybrid_training_data.json");
    let (codi_result, phase1_result) = beside(
        || phase_or_reuse::<B>(&codi, &test, device, progress, cfg.reuse_models),
        || -> Result<(Phase1Summary, f64)> {
            let phase1_start = Instant::now();
            let train = load_problems(&train_path, DataFormat::Icot, None)?;
            // Inference only: the inner backend, so that no autodiff graph is recorded.
            let summary = run_phase1::<B::InnerBackend>(
                &cot.saved,
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
    let codi_record = codi_result?;
    rows.push(codi_record.row("CODI", "latent"));
    let (phase1, phase1_seconds) = phase1_result?;
    let mut hybrid_training = cfg.hybrid;
    if cfg.control_all_latent {
        let mut file = read_hybrid_file(&hybrid_path)?;
        let count = file.generator.max_latent_steps;
        for sample in &mut file.samples {
            sample.strategy = Strategy::Random;
            sample.segments = vec![Segment::Latent {
                count,
                replaces: (0..sample.steps.len()).collect(),
            }];
        }
        write_hybrid_file(&hybrid_path, &file)?;
        hybrid_training.cot_only_ratio = 0.0;
    }

    let mut hybrid = codi.clone();
    hybrid.method.restore_from = Some(codi_record.saved.clone());
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
        &hybrid_training,
        &options,
        std::slice::from_ref(device),
    )?;
    let model = model.valid();
    let tokenizer = tokenizer_of(&report.saved)?;
    let prep = prep_config(
        &hybrid,
        &crate::model::read_meta(&report.saved)?,
        model.lm.config(),
    );
    let (examples, _) = prepare(&test, &tokenizer, &prep)?;
    if examples.len() != test.len() {
        return Err(CodiError::Empty(format!(
            "preprocessing kept {} of {} test problems; the planned mode needs all",
            examples.len(),
            test.len()
        )));
    }
    // The oracle's plans: Phase 1's entropy rule (the CoT-SFT model, the training file's
    // threshold) on each test problem's gold CoT.
    let threshold = phase1.threshold;
    let (cot_model, _, _) =
        CodiModel::<B::InnerBackend>::load(&cot.saved, device, burn::tensor::DType::F32)?;
    let plans = entropy_plans(
        &cot_model,
        &tokenizer,
        &test,
        &prep,
        threshold,
        cfg.phase1.batch_size,
    )?;
    let eval = EvalConfig {
        batch_size: hybrid.eval.batch_size,
        max_new_tokens: hybrid.eval.max_new_tokens,
        num_latent: e.num_latent,
        ..EvalConfig::default()
    };
    let mut summaries = Vec::new();
    for (name, controller) in modes(cfg, e.num_latent, cfg.phase1.latents_per_step) {
        let s = evaluate_hybrid(
            &model,
            &tokenizer,
            &examples,
            &eval,
            &controller,
            Some(&plans),
            |_| {},
        )?;
        rows.push(hybrid_row(name, &s));
        summaries.push(s);
    }
    write(
        &report.saved.join("eval_hybrid.json"),
        &serde_json::to_string_pretty(&summaries).expect("json"),
    )?;
    let out = SeedReport {
        seed: e.seed,
        phase1,
        phase_seconds: [
            cot.train_seconds,
            codi_record.train_seconds,
            phase1_seconds,
            report.seconds,
        ],
        rows,
    };
    write_results(&e.output_dir, &out, &seed_table(&out.rows))?;
    Ok(out)
}

fn hybrid_row(mode: String, s: &HybridSummary) -> PipelineRow {
    PipelineRow {
        model: HYBRID.into(),
        mode,
        accuracy: 100.0 * s.accuracy,
        tokens: s.mean_tokens,
        latent_steps: s.mean_latent_steps,
        switches: s.mean_switches,
        seconds: s.seconds,
    }
}

/// Runs the pipeline on `device` for every seed, `cfg.parallel_seeds` at a time (each on its own
/// threads; progress bars only when one runs at a time); `each` sees each seed's report as it
/// lands.
pub fn run_pipeline<B: AutodiffBackend>(
    cfg: &PipelineConfig,
    device: &B::Device,
    progress: bool,
    mut each: impl FnMut(&SeedReport),
) -> Result<PipelineReport>
where
    B::Device: Sync,
{
    let start = Instant::now();
    let mut seeds = Vec::with_capacity(cfg.seeds.len());
    let workers = cfg.parallel_seeds.max(1);
    for group in cfg.seeds.chunks(workers) {
        let progress = progress && group.len() == 1;
        let reports: Vec<Result<SeedReport>> = std::thread::scope(|scope| {
            let handles: Vec<_> = group
                .iter()
                .map(|&seed| {
                    let e = ExperimentConfig {
                        seed,
                        output_dir: cfg.experiment.output_dir.join(format!("seed-{seed}")),
                        ..cfg.experiment.clone()
                    };
                    scope.spawn(move || run_seed::<B>(cfg, &e, device, progress))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        for report in reports {
            let report = report?;
            each(&report);
            seeds.push(report);
        }
    }
    let out = PipelineReport {
        config: cfg.clone(),
        rows: aggregate(&seeds),
        comparisons: compare(&seeds),
        seeds,
        seconds: start.elapsed().as_secs_f64(),
    };
    let dir = &cfg.experiment.output_dir;
    write_results(dir, &out, &out.markdown())?;
    let means: Vec<PipelineRow> = out
        .rows
        .iter()
        .map(|r| PipelineRow {
            model: r.model.clone(),
            mode: r.mode.clone(),
            accuracy: r.accuracy[0],
            tokens: r.tokens[0],
            latent_steps: r.latent_steps[0],
            switches: r.switches[0],
            seconds: 0.0,
        })
        .collect();
    plot(&dir.join("accuracy_vs_tokens.png"), &means)?;
    Ok(out)
}

/// The tokenizer saved with a model.
fn tokenizer_of(dir: &Path) -> Result<tokenizers::Tokenizer> {
    latent_core::hf::tokenizer::load_tokenizer(dir.join("model/tokenizer.json")).map_err(Into::into)
}

/// The figure of `accuracy_vs_tokens.png`: accuracy (y, %) against mean written tokens per
/// question (x), one marker series per model and mode, the random-switching rows joined by a line
/// in order of their token counts.
pub fn accuracy_plot(rows: &[PipelineRow]) -> Plot {
    let mut plot = Plot::new(
        "hybrid pipeline: test accuracy against written tokens (mean over seeds)",
        "written tokens per question (mean)",
        "test accuracy (%)",
    )
    .size(900, 540);
    let mut random: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r.mode.starts_with("random"))
        .map(|r| (r.tokens, r.accuracy))
        .collect();
    random.sort_by(|a, b| a.0.total_cmp(&b.0));
    for r in rows.iter().filter(|r| !r.mode.starts_with("random")) {
        plot = plot.with(Series::new(
            format!("{}, {}", r.model, r.mode),
            vec![(r.tokens, r.accuracy)],
            Style::Markers,
        ));
    }
    if !random.is_empty() {
        plot = plot.with(Series::new(
            format!("{HYBRID}, random switching"),
            random,
            Style::LineMarkers,
        ));
    }
    plot
}

/// Writes [`accuracy_plot`] of `rows` as a PNG at `path`.
pub fn plot(path: &Path, rows: &[PipelineRow]) -> Result<()> {
    Ok(accuracy_plot(rows).save(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(mode: &str, tokens: f64, accuracy: f64) -> PipelineRow {
        PipelineRow {
            model: HYBRID.into(),
            mode: mode.into(),
            accuracy,
            tokens,
            latent_steps: 0.0,
            switches: 0.0,
            seconds: 0.0,
        }
    }

    #[test]
    fn the_plot_names_each_mode_and_joins_the_random_rows_by_tokens() {
        let rows = [
            row("explicit", 30.0, 50.0),
            row("random p=0.5", 20.0, 40.0),
            row("latent", 5.0, 20.0),
            row("random p=0.2", 10.0, 30.0),
        ];
        let plot = accuracy_plot(&rows);
        let names: Vec<&str> = plot.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "hybrid (Phase 2), explicit",
                "hybrid (Phase 2), latent",
                "hybrid (Phase 2), random switching"
            ]
        );
        assert_eq!(plot.series[0].points, vec![(30.0, 50.0)]);
        assert_eq!(plot.series[0].style, Style::Markers);
        assert_eq!(plot.series[2].points, vec![(10.0, 30.0), (20.0, 40.0)]);
        assert_eq!(plot.series[2].style, Style::LineMarkers);
        assert_eq!(plot.y_label, "test accuracy (%)");
    }

    fn seed(seed: u64, adaptive: f64) -> SeedReport {
        SeedReport {
            seed,
            phase1: Phase1Summary {
                samples: 0,
                dropped: 0,
                per_strategy: Default::default(),
                latent_step_fraction: Default::default(),
                mean_thoughts: 0.0,
                mean_runs: 0.0,
                threshold: 0.0,
                entropy_quartiles: [0.0; 3],
                mean_entropy_by_step: Vec::new(),
            },
            phase_seconds: [0.0; 4],
            rows: vec![
                row("explicit", 20.0, 90.0),
                row("latent", 5.0, 30.0),
                row("adaptive τ=0.5", 12.5, adaptive),
                row("random p=0.5", 10.0, 20.0),
                row("random p=0.75", 15.0, 40.0),
            ],
        }
    }

    #[test]
    fn interpolation_and_spread() {
        let points = [(10.0, 20.0), (5.0, 30.0), (15.0, 40.0)];
        assert_eq!(interpolate(&points, 12.5), 30.0);
        assert_eq!(interpolate(&points, 7.5), 25.0);
        assert_eq!(
            (interpolate(&points, 1.0), interpolate(&points, 99.0)),
            (30.0, 40.0)
        );
        assert_eq!(mean_sd(&[1.0, 2.0, 3.0]), [2.0, 1.0]);
        assert_eq!(mean_sd(&[4.0]), [4.0, 0.0]);
    }

    /// At 12.5 tokens the line from (5, 30) to (20, 90) gives 60 and random (15 → 40 between
    /// (10, 20) and (15, 40)) gives 30: an adaptive mode at 63 / 65 / 67 is +5 ± 1.15 above the
    /// line and +35 ± 1.15 above random.
    #[test]
    fn comparisons_are_paired_within_each_seed() {
        let seeds = vec![seed(1, 63.0), seed(2, 65.0), seed(3, 67.0)];
        let rows = aggregate(&seeds);
        assert_eq!(rows.len(), 5);
        assert_eq!(rows[2].accuracy, [65.0, 2.0]);
        let c = compare(&seeds);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].mode, "adaptive τ=0.5");
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(c[0]
            .above_line
            .iter()
            .zip([3.0, 5.0, 7.0])
            .all(|(&a, b)| close(a, b)));
        assert!(c[0]
            .above_random
            .iter()
            .zip([33.0, 35.0, 37.0])
            .all(|(&a, b)| close(a, b)));
        assert!(close(c[0].above_line_mean_se[0], 5.0));
        assert!(close(c[0].above_line_mean_se[1], 2.0 / 3f64.sqrt()));
    }
}
