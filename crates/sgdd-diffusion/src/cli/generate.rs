//! `latent sgdd generate`: MaskGIT + CFG decoding of encoded texts with a trained SGDD model.

use std::path::PathBuf;
use std::time::Instant;

use burn::prelude::*;
use latent_core::cli::{CommonArgs, Flag, JobResult};
use latent_core::BackendJob;

use crate::eval::row_text;
use crate::maskgit::generate;
use crate::schedule::MaskSchedule;
use crate::train::load_trained;

const JOB: &str = "latent sgdd generate";

/// Arguments of `latent sgdd generate`.
#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// The common flags (`--set`, `--device`, `--dry-run` apply).
    #[command(flatten)]
    pub common: CommonArgs,
    /// Checkpoint or export directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Texts to encode and decode (repeatable).
    #[arg(long, required = true)]
    pub text: Vec<String>,
    /// MaskGIT steps (default: the run's `decode.steps`).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Classifier-free guidance scale.
    #[arg(long)]
    pub cfg_scale: Option<f64>,
    /// Gumbel temperature of the unmasking order.
    #[arg(long)]
    pub gumbel_tau: Option<f64>,
    /// Sampling temperature.
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Correction rounds.
    #[arg(long)]
    pub correct_rounds: Option<usize>,
    /// Seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Decode this many copies of the texts as one batch (latency measurements).
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Timed runs (after one warm-up run when > 1).
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
}

impl GenerateArgs {
    /// Generates on `--device` (default cpu).
    pub fn run(self) -> JobResult {
        let uses = [Flag::Set, Flag::Device, Flag::DryRun];
        let Some(device) = self.common.start_on_device(JOB, &uses, &self)? else {
            return Ok(());
        };
        Ok(device.run(Generate(self))??)
    }
}

struct Generate(GenerateArgs);

impl BackendJob for Generate {
    type Output = crate::Result<()>;

    fn run<B: Backend>(self, device: B::Device) -> Self::Output {
        let args = self.0;
        let (config, encoder, model) =
            load_trained::<B>(&args.model, &args.common.overrides, &device)?;
        let mut decode = config.decode.clone();
        decode.steps = args.steps.unwrap_or(decode.steps);
        decode.cfg_scale = args.cfg_scale.unwrap_or(decode.cfg_scale);
        decode.gumbel_tau = args.gumbel_tau.unwrap_or(decode.gumbel_tau);
        decode.temperature = args.temperature.unwrap_or(decode.temperature);
        decode.correct_rounds = args.correct_rounds.unwrap_or(decode.correct_rounds);
        decode.seed = args.seed.unwrap_or(decode.seed);
        let texts: Vec<String> = (0..args.repeat.max(1))
            .flat_map(|_| args.text.iter().cloned())
            .collect();
        let cond = encoder.embed_texts(&texts, texts.len(), &device)?;
        let batch = cond.len();
        let len = config.model.max_len;
        let schedule = MaskSchedule::default();
        let decode_once = || -> crate::Result<Vec<u32>> {
            let embed = |ids: &[u32]| -> Vec<Vec<f32>> {
                let rows: Vec<String> = ids
                    .chunks(len)
                    .map(|r| row_text(&encoder, r).unwrap_or_default())
                    .collect();
                encoder
                    .embed_texts(&rows, rows.len(), &device)
                    .unwrap_or_default()
            };
            Ok(generate(
                &model,
                &cond,
                len,
                &encoder.special,
                &decode,
                &schedule,
                embed,
            ))
        };
        if args.runs > 1 {
            decode_once()?;
        }
        let mut times = Vec::new();
        let mut ids = Vec::new();
        for _ in 0..args.runs.max(1) {
            let start = Instant::now();
            ids = decode_once()?;
            times.push(start.elapsed().as_secs_f64());
        }
        let outputs = ids
            .chunks(len)
            .map(|r| row_text(&encoder, r))
            .collect::<crate::Result<Vec<_>>>()?;
        for (input, output) in texts.iter().zip(&outputs).take(args.text.len()) {
            println!("{input}\n  -> {output}");
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        println!(
            "{}",
            serde_json::json!({
                "batch": batch, "length": len, "steps": decode.steps, "cfg_scale": decode.cfg_scale,
                "decoder_passes_per_step": if decode.cfg_scale == 0.0 { 1 } else { 2 },
                "runs": times.len(), "median_s": median, "per_sequence_ms": median * 1e3 / batch as f64,
                "times_s": times,
            })
        );
        Ok(())
    }
}
