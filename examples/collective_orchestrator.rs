//! burn-collective's global orchestrator, which the nodes of a multi-node data-parallel run
//! (`latent_core::train::GlobalCollective`) register with before they exchange gradients
//! directly. Runs until Ctrl-C or SIGTERM.
//!
//! ```text
//! cargo run --release --example collective_orchestrator -- --port 3000
//! ```
//! See docs/training.md, "Data parallel", for the node side and for the state of the multi-node
//! path on burn-collective 0.21.0.
//!
//! A thin wrapper: the same job, flags and output as `latent orchestrator` (`latent orchestrator --help`).

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    latent_reasoning::cli::main_as(&["orchestrator"]);
}
