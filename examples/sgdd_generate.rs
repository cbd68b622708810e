//! Encodes texts with the model's frozen encoder and decodes them with MaskGIT + CFG; prints each
//! output and the decoding time (batch of all `--text`s, or `--repeat` copies for latency runs).
//! The time covers MaskGIT decoding (and correction rounds when asked), not the initial encoding.
//!
//! ```text
//! cargo run --release --example sgdd_generate -- --model runs/sgdd/phase1/export \
//!     --text "How can I be a good geologist?" [--text ...] [--steps 16] [--cfg-scale 2] \
//!     [--gumbel-tau 4.5] [--temperature 1] [--correct-rounds 2] [--repeat 32] [--runs 3]
//! ```

use std::path::PathBuf;
use std::time::Instant;

use burn::prelude::*;
use clap::Parser;
use latent_core::{BackendJob, DeviceSpec};
use sgdd_diffusion::eval::row_text;
use sgdd_diffusion::maskgit::generate;
use sgdd_diffusion::schedule::MaskSchedule;
use sgdd_diffusion::train::load_trained;

#[derive(Parser, Debug)]
#[command(about = "Generate text from semantic vectors with a trained SGDD model")]
struct Args {
    /// Checkpoint or export directory.
    #[arg(long)]
    model: PathBuf,
    /// Texts to encode and decode (repeatable).
    #[arg(long, required = true)]
    text: Vec<String>,
    #[arg(long)]
    steps: Option<usize>,
    #[arg(long)]
    cfg_scale: Option<f64>,
    #[arg(long)]
    gumbel_tau: Option<f64>,
    #[arg(long)]
    temperature: Option<f64>,
    #[arg(long)]
    correct_rounds: Option<usize>,
    #[arg(long)]
    seed: Option<u64>,
    /// Decode this many copies of the texts as one batch (latency measurements).
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Timed runs (after one warm-up run when > 1).
    #[arg(long, default_value_t = 1)]
    runs: usize,
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
}

struct Generate(Args);

impl BackendJob for Generate {
    type Output = sgdd_diffusion::Result<()>;

    fn run<B: Backend>(self, device: B::Device) -> Self::Output {
        let args = self.0;
        let (config, encoder, model) = load_trained::<B>(&args.model, &[], &device)?;
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
        let decode_once = || -> sgdd_diffusion::Result<Vec<u32>> {
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
            .collect::<sgdd_diffusion::Result<Vec<_>>>()?;
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

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args = Args::parse();
    let device = args.device;
    if let Err(err) = device
        .run(Generate(args))
        .map_err(Into::into)
        .and_then(|r| r)
    {
        let err: sgdd_diffusion::SgddError = err;
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}
