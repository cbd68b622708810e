//! The backend's random generator, seeded under one process-wide lock.
//!
//! Burn's generators are global to the process (one per backend), so code that seeds and then
//! draws (initial weights, dropout masks) holds [`BackendRng`] while it does: no other thread can
//! reseed or draw from the locked section of another. The lock is re-entrant on its own thread:
//! seeding again while a guard is held (the training loop seeds each micro-batch, and a loss may
//! build a module from a seed of its own) reseeds without waiting for itself.

use std::cell::Cell;
use std::sync::{Mutex, MutexGuard};

use burn::tensor::backend::Backend;

/// Held while a backend's random generator is seeded and drawn from (see [`seed_backend`]).
static BACKEND_RNG: Mutex<()> = Mutex::new(());

thread_local! {
    /// How many [`BackendRng`] guards this thread holds (the lock is taken by the first).
    static HELD: Cell<usize> = const { Cell::new(0) };
}

/// The lock on the backend's generator, taken by [`seed_backend`]; released when the outermost
/// guard of the thread is dropped. Not `Send`: it is dropped on the thread that took it.
#[must_use = "the generator is only reserved while the guard is alive"]
#[derive(Debug)]
pub struct BackendRng {
    _lock: Option<MutexGuard<'static, ()>>,
}

impl Drop for BackendRng {
    fn drop(&mut self) {
        HELD.with(|held| held.set(held.get() - 1));
    }
}

/// Seeds backend `B`'s random generator with `seed` and returns a guard: hold it while drawing
/// (initial weights, dropout masks). The generator is global to the process, so seeding and
/// drawing under one lock keep models built, and losses computed, on concurrent threads
/// reproducible. Calling it again on a thread that holds a guard reseeds without blocking.
pub fn seed_backend<B: Backend>(device: &B::Device, seed: u64) -> BackendRng {
    let lock = if HELD.with(Cell::get) == 0 {
        Some(BACKEND_RNG.lock().unwrap_or_else(|e| e.into_inner()))
    } else {
        None
    };
    HELD.with(|held| held.set(held.get() + 1));
    B::seed(device, seed);
    BackendRng { _lock: lock }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, Tensor};

    use super::*;
    use crate::CpuBackend;

    fn draw() -> Vec<f32> {
        Tensor::<CpuBackend, 1>::random([4], Distribution::Default, &Default::default())
            .into_data()
            .to_vec()
            .unwrap()
    }

    #[test]
    fn reseeding_while_held_does_not_block_and_restarts_the_stream() {
        let device = Default::default();
        let outer = seed_backend::<CpuBackend>(&device, 11);
        let first = draw();
        {
            let _inner = seed_backend::<CpuBackend>(&device, 11);
            assert_eq!(draw(), first, "the same seed gives the same draws");
        }
        assert_eq!(HELD.with(Cell::get), 1);
        drop(outer);
        assert_eq!(HELD.with(Cell::get), 0);
        // The lock is free again: another thread can take it.
        std::thread::spawn(move || {
            let _rng = seed_backend::<CpuBackend>(&device, 11);
            assert_eq!(draw(), first);
        })
        .join()
        .unwrap();
    }
}
