//! The `latent` command: every recipe of the workspace as `latent <group> <job>`, each job taking
//! the common flags of [`latent_core::cli::CommonArgs`]. The examples in `examples/` call
//! [`main_as`] with their job's path, so `cargo run --example X -- <flags>` and `latent <group>
//! <job> <flags>` run the same code.

use clap::{Parser, Subcommand};
use latent_core::cli::{exit_on_error, JobResult};

pub mod bench;
pub mod lm;
pub mod orchestrator;

/// `latent`: the recipes of the latent-reasoning workspace.
#[derive(Parser, Debug)]
#[command(
    name = "latent",
    version,
    about = "The recipes of the latent-reasoning workspace: CODI, HRPO, the latent reward model, \
SGDD, causal-LM tools and benchmarks",
    long_about = "The recipes of the latent-reasoning workspace, one subcommand each: \
`latent <group> <job> [flags]`. Every job takes the common flags (--config FILE, --set KEY=VALUE, \
--dry-run, --resume [DIR], --device cpu|cuda[:N], --output-dir DIR, --quiet) and rejects those \
that do not apply to it; `latent <group> <job> --help` says what the job does and where it writes. \
Errors are reported as `error: <message>` with exit status 1. Build with --features cuda for \
--device cuda."
)]
pub struct Cli {
    /// The group of jobs.
    #[command(subcommand)]
    pub group: Group,
}

/// The groups of jobs.
#[derive(Subcommand, Debug)]
pub enum Group {
    /// CODI and hybrid explicit/latent CODI (docs/codi.md, docs/codi-hybrid.md).
    #[command(subcommand)]
    Codi(latent_codi::cli::Command),
    /// GRPO / HRPO training, evaluation, the adapter forward pass, the CPU demo (docs/grpo.md).
    #[command(subcommand)]
    Hrpo(grpo_rl::cli::Command),
    /// The latent reward model: collect paths, train, best-of-N, the CPU demo (docs/prm.md).
    #[command(subcommand)]
    Prm(latent_prm::cli::Command),
    /// Semantic-guided masked diffusion: train, evaluate, generate (docs/sgdd.md).
    #[command(subcommand)]
    Sgdd(sgdd_diffusion::cli::Command),
    /// Causal LMs and encoders: forward, save, generate, encode, the quickstart tour.
    #[command(subcommand)]
    Lm(lm::Command),
    /// Benchmarks (docs/performance.md): one JSON line each.
    #[command(subcommand)]
    Bench(bench::Command),
    /// burn-collective's global orchestrator for multi-node data parallel (docs/training.md).
    ///
    /// burn-collective's global orchestrator, which the nodes of a multi-node data-parallel run
    /// (latent_core::train::GlobalCollective) register with before they exchange gradients
    /// directly. Runs until Ctrl-C or SIGTERM; writes nothing (docs/training.md, "Data parallel").
    /// --dry-run prints the port and stops.
    Orchestrator(orchestrator::OrchestratorArgs),
}

impl Cli {
    /// Runs the chosen job.
    pub fn run(self) -> JobResult {
        match self.group {
            Group::Codi(job) => job.run(),
            Group::Hrpo(job) => job.run(),
            Group::Prm(job) => job.run(),
            Group::Sgdd(job) => job.run(),
            Group::Lm(job) => job.run(),
            Group::Bench(job) => job.run(),
            Group::Orchestrator(job) => job.run(),
        }
    }
}

/// Parses `args` (the program name first) and runs the job; a usage error exits as clap does
/// (status 2), a failed job with `error: <message>` and status 1.
pub fn run_from<I, T>(args: I)
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    exit_on_error(Cli::parse_from(args).run());
}

/// `latent`'s `main`: the process's arguments.
pub fn main() {
    run_from(std::env::args_os());
}

/// An example's `main`: runs the job at `path` (e.g. `["codi", "train"]`) with the process's
/// arguments, as `latent codi train <arguments>` would.
pub fn main_as(path: &[&str]) {
    let mut args = std::env::args_os();
    let program = args.next().unwrap_or_else(|| "latent".into());
    run_from(
        std::iter::once(program)
            .chain(path.iter().map(Into::into))
            .chain(args),
    );
}
