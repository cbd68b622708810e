//! Phase 2 of hybrid CODI (`docs/codi-hybrid.md`): trains on the hybrid samples of Phase 1 with the
//! plain CODI model, special ids, projection and forward, so the output `final_model/` evaluates
//! in plain `codi_eval` (and in hybrid mode with `--baseline_mode`). Flags mirror the design
//! document; `--config` optionally gives a run config (`configs/codi/*.yaml`) the flags override.
//!
//! ```text
//! cargo run --release --example codi_phase2 -- --restore_from runs/x/codi/final_model \
//!     --hybrid_data_path runs/x/hybrid/hybrid_training_data.json --output_dir runs/x/hybrid_codi \
//!     --num_train_epochs 2 --per_device_train_batch_size 32 --learning_rate 1e-3
//! ```
//! `--devices cpu,cpu` (or `cuda:0,cuda:1`) trains one data-parallel replica per device, each taking
//! `per_device_train_batch_size` examples of every micro-batch (`training.effective_batch_size`
//! must be a multiple of that times the device count).
//!
//! A thin wrapper: the same job, flags and output as `latent codi phase2` (`latent codi phase2 --help`).

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    latent_reasoning::cli::main_as(&["codi", "phase2"]);
}
