//! Times the few-rows product of `latent_core::model::few_rows_matmul` against Flex's own matmul on
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
//!
//! A thin wrapper: the same job, flags and output as `latent bench few-rows` (`latent bench few-rows --help`).

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    latent_reasoning::cli::main_as(&["bench", "few-rows"]);
}
