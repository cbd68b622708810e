//! Evaluates a trained latent reward model on a held-out collection: score quality (MSE, MAE,
//! AUROC) and best-of-N accuracy against greedy, random, majority vote, score-weighted vote and
//! pass@N, with bootstrap error bars; writes `results.json`, `results.md` and `best_of_n.png`.
//!
//! ```text
//! cargo run --release --example prm_eval -- --model runs/prm/train/final --paths runs/prm/paths-test --out runs/prm/eval
//! ```

use std::path::PathBuf;

use burn::prelude::*;
use clap::Parser;
use latent_codi::experiment::write_results;
use latent_core::{BackendJob, DeviceSpec};
use latent_prm::eval::evaluate;
use latent_prm::paths::PathSet;
use latent_prm::train::load_scorer;

#[derive(Parser, Debug)]
#[command(about = "Best-of-N evaluation of a latent reward model")]
struct Args {
    /// A checkpoint directory of a `prm_train` run (`final/`, `best/`, ...).
    #[arg(long)]
    model: PathBuf,
    /// A held-out `prm_collect` directory.
    #[arg(long)]
    paths: PathBuf,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Pool sizes N (those up to the collection's paths per question are used).
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
    n: Vec<usize>,
    /// Bootstrap rounds.
    #[arg(long, default_value_t = 200)]
    rounds: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// `cpu` or `cuda[:N]`.
    #[arg(long, default_value = "cpu")]
    device: String,
}

type Out = Result<(), Box<dyn std::error::Error>>;

struct Job(Args);

impl BackendJob for Job {
    type Output = Out;

    fn run<B: Backend>(self, device: B::Device) -> Out {
        let a = self.0;
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
        report.plot(&a.out.join("best_of_n.png"))?;
        write_results(&a.out, &report, &report.markdown())?;
        println!("{}", report.markdown());
        Ok(())
    }
}

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Out {
    let args = Args::parse();
    let device: DeviceSpec = args.device.parse()?;
    device.run(Job(args))?
}
