//! `latent orchestrator`: burn-collective's global orchestrator for multi-node data parallel.

use latent_core::cli::{CommonArgs, Flag, JobResult};

const JOB: &str = "latent orchestrator";

/// Arguments of `latent orchestrator`.
#[derive(clap::Args, Debug)]
pub struct OrchestratorArgs {
    /// The common flags (`--dry-run` applies).
    #[command(flatten)]
    pub common: CommonArgs,
    /// The port to listen on (all interfaces); nodes use `ws://<this host>:<port>`.
    #[arg(long, default_value_t = 3000)]
    pub port: u16,
}

impl OrchestratorArgs {
    /// Serves until Ctrl-C / SIGTERM.
    pub fn run(self) -> JobResult {
        self.common.accept(JOB, &[Flag::DryRun])?;
        if self.common.dry_run {
            println!("{self:#?}");
            return Ok(());
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        // It logs (burn's tracing subscriber) and returns at Ctrl-C / SIGTERM or when it cannot
        // listen on the port.
        runtime.block_on(burn_collective::start_global_orchestrator(self.port));
        Ok(())
    }
}
