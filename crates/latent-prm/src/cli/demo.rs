//! `latent prm demo`: the CPU-sized latent reward model demo.

use std::path::PathBuf;

use burn::backend::Autodiff;
use latent_core::cli::{CommonArgs, JobResult};
use latent_core::CpuBackend;

use crate::demo::{run_demo, DemoConfig};
use crate::loss::LossKind;

const JOB: &str = "latent prm demo";

/// Arguments of `latent prm demo` (unset flags keep the documented run's values).
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// The common flags (`--output-dir`, `--quiet`, `--dry-run` apply).
    #[command(flatten)]
    pub common: CommonArgs,
    /// The CODI experiment's output directory (reused, or trained there).
    #[arg(long, default_value = "runs/codi-experiment")]
    pub codi_experiment: PathBuf,
    /// Training questions.
    #[arg(long)]
    pub train_questions: Option<usize>,
    /// Held-out questions.
    #[arg(long)]
    pub test_questions: Option<usize>,
    /// Paths per held-out question (the largest N).
    #[arg(long)]
    pub test_paths: Option<usize>,
    /// Noise σ (relative to each thought's RMS unless --absolute-sigma).
    #[arg(long)]
    pub sigma: Option<f32>,
    /// Use σ as is.
    #[arg(long)]
    pub absolute_sigma: bool,
    /// `mse`, `bce` or `listwise`.
    #[arg(long)]
    pub loss: Option<String>,
    /// Epochs of the scorer.
    #[arg(long)]
    pub epochs: Option<usize>,
}

impl DemoArgs {
    /// The demo's settings: the documented run's, changed by the flags given.
    pub fn config(&self) -> Result<DemoConfig, serde_json::Error> {
        let (a, d) = (self, DemoConfig::default());
        let loss: LossKind = match &a.loss {
            Some(s) => serde_json::from_value(serde_json::Value::String(s.clone()))?,
            None => d.loss,
        };
        Ok(DemoConfig {
            output_dir: a
                .common
                .output_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("runs/prm-demo")),
            codi_experiment: a.codi_experiment.clone(),
            train_questions: a.train_questions.unwrap_or(d.train_questions),
            test_questions: a.test_questions.unwrap_or(d.test_questions),
            test_paths: a.test_paths.unwrap_or(d.test_paths),
            sigma: a.sigma.unwrap_or(d.sigma),
            relative_sigma: !a.absolute_sigma,
            loss,
            epochs: a.epochs.unwrap_or(d.epochs),
            ..d
        })
    }

    /// Runs the demo on the CPU (or prints its settings with `--dry-run`).
    pub fn run(self) -> JobResult {
        self.common.run_settings(JOB, &self.config()?, demo)
    }
}

/// Runs the demo with `cfg` and prints its table and stage times.
pub fn demo(cfg: &DemoConfig, progress: bool) -> JobResult {
    let report = run_demo::<Autodiff<CpuBackend>>(cfg, &Default::default(), progress)?;
    println!("{}", report.eval.markdown());
    println!(
        "total {:.0} s (reasoner, collection, scorer, evaluation: {:.0?} s)",
        report.seconds, report.stage_seconds
    );
    Ok(())
}
