//! `latent prm eval`: best-of-N evaluation of a trained latent reward model.

use std::path::PathBuf;

use burn::prelude::*;
use latent_codi::experiment::write_results;
use latent_core::cli::{CommonArgs, Flag, JobResult};
use latent_core::BackendJob;

use crate::eval::evaluate;
use crate::paths::PathSet;
use crate::train::load_scorer;

const JOB: &str = "latent prm eval";

/// Arguments of `latent prm eval`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// The common flags (`--device`, `--output-dir`, `--dry-run` apply).
    #[command(flatten)]
    pub common: CommonArgs,
    /// A checkpoint directory of a `latent prm train` run (`final/`, `best/`, ...).
    #[arg(long)]
    pub model: PathBuf,
    /// A held-out `latent prm collect` directory.
    #[arg(long)]
    pub paths: PathBuf,
    /// Output directory (same as `--output-dir`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Pool sizes N (those up to the collection's paths per question are used).
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
    pub n: Vec<usize>,
    /// Bootstrap rounds.
    #[arg(long, default_value_t = 200)]
    pub rounds: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

impl EvalArgs {
    /// Evaluates on `--device` (default cpu).
    pub fn run(self) -> JobResult {
        let c = &self.common;
        let out = c.output(JOB, self.out.as_deref(), "--out (or --output-dir)")?;
        let uses = [Flag::Device, Flag::OutputDir, Flag::DryRun];
        let Some(device) = c.start_on_device(JOB, &uses, &(&self, &out))? else {
            return Ok(());
        };
        device.run(Job { args: self, out })?
    }
}

struct Job {
    args: EvalArgs,
    out: PathBuf,
}

impl BackendJob for Job {
    type Output = JobResult;

    fn run<B: Backend>(self, device: B::Device) -> JobResult {
        let Job { args: a, out } = self;
        let (model, config) = load_scorer::<B>(&a.model, &device)?;
        let set = PathSet::load(&a.paths)?;
        let report = evaluate(
            &model,
            &set,
            config.loss,
            config.data.max_seq_len,
            &a.n,
            a.rounds,
            a.seed,
        )?;
        report.plot(&out.join("best_of_n.png"))?;
        write_results(&out, &report, &report.markdown())?;
        println!("{}", report.markdown());
        Ok(())
    }
}
