//! burn-collective's global orchestrator, which the nodes of a multi-node data-parallel run
//! (`latent_core::train::GlobalCollective`) register with before they exchange gradients
//! directly. Runs until Ctrl-C or SIGTERM.
//!
//! ```text
//! cargo run --release --example collective_orchestrator -- --port 3000
//! ```
//! See docs/training.md, "Data parallel", for the node side and for the state of the multi-node
//! path on burn-collective 0.21.0.

use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "burn-collective's global orchestrator for multi-node data-parallel training")]
struct Args {
    /// The port to listen on (all interfaces); nodes use `ws://<this host>:<port>`.
    #[arg(long, default_value_t = 3000)]
    port: u16,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // It logs (burn's tracing subscriber) and returns at Ctrl-C / SIGTERM or when it cannot
    // listen on the port.
    runtime.block_on(burn_collective::start_global_orchestrator(args.port));
    Ok(())
}
