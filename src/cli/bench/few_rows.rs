//! `latent bench few-rows`: times the few-rows product of `latent_core::model::few_rows_matmul` against Flex's own matmul on
//! decoding-step shapes, with cold weights (`--copies` distinct weights used in turn, so none stays
//! in cache); prints one JSON line per shape.
//!
//! ```text
//! cargo run --release --example bench_few_rows -- [--reps 400] [--copies 40]
//! ```
//! `whole_us`: Flex's matmul (one thread below 192³ multiply-adds). `cut_in_pool_us`: cut over the
//! depth into one part per thread, called from a pool thread (as `Stepper` calls it).
//! `cut_outside_pool_us`: the same cut called from the main thread (the hand-off to the pool then
//! costs a sleep on a lock). See docs/performance.md.

use std::time::Instant;

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::Distribution;
use latent_core::cli::{CommonArgs, Flag, JobResult};
use latent_core::model::few_rows_matmul::split_depth;

#[derive(clap::Args, Debug, Clone)]
pub struct FewRowsArgs {
    /// The common flags (`--dry-run` applies).
    #[command(flatten)]
    pub common: CommonArgs,
    /// Timed products per shape and variant.
    #[arg(long, default_value_t = 400)]
    pub reps: usize,
    /// Distinct weights used in turn.
    #[arg(long, default_value_t = 40)]
    pub copies: usize,
}

/// Mean microseconds of `f(r)` over `reps` calls.
fn time_us(reps: usize, mut f: impl FnMut(usize)) -> f64 {
    f(0);
    let start = Instant::now();
    for r in 0..reps {
        f(r);
    }
    start.elapsed().as_secs_f64() * 1e6 / reps as f64
}

const JOB: &str = "latent bench few-rows";

impl FewRowsArgs {
    /// Times every shape on the CPU and prints one JSON line each.
    pub fn run(self) -> JobResult {
        self.common.accept(JOB, &[Flag::DryRun])?;
        if self.common.dry_run {
            println!("{self:#?}");
            return Ok(());
        }
        let args = self;
        let device = Default::default();
        let parts = rayon::current_num_threads();
        for [m, k, n] in [
            [1, 256, 704],
            [1, 768, 2304],
            [1, 768, 3072],
            [1, 3072, 768],
            [8, 256, 704],
            [8, 768, 768],
        ] {
            let x = Tensor::<Flex, 2>::random([m, k], Distribution::Default, &device);
            let weights: Vec<Tensor<Flex, 2>> = (0..args.copies)
                .map(|_| Tensor::random([k, n], Distribution::Default, &device))
                .collect();
            let w = |r: usize| weights[r % weights.len()].clone();
            let whole = time_us(args.reps, |r| {
                std::hint::black_box(x.clone().matmul(w(r)));
            });
            let outside = time_us(args.reps, |r| {
                std::hint::black_box(split_depth(x.clone(), w(r), parts));
            });
            let inside = rayon::scope(|_| {
                time_us(args.reps, |r| {
                    std::hint::black_box(split_depth(x.clone(), w(r), parts));
                })
            });
            println!(
                "{}",
                serde_json::json!({
                    "bench": "few_rows", "m": m, "k": k, "n": n, "threads": parts,
                    "weight_mb": (k * n * 4) as f64 / 1e6,
                    "whole_us": whole, "cut_in_pool_us": inside, "cut_outside_pool_us": outside,
                    "whole_over_cut_in_pool": whole / inside,
                })
            );
        }
        Ok(())
    }
}
