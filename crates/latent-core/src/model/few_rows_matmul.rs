//! Matrix products with few rows (a decoding step's `[batch, hidden] × [hidden, out]`) on the CPU
//! backend, cut into one part per thread.
//!
//! Flex hands every product below 192³ multiply-adds to `gemm` on one thread. That covers every
//! projection of a batch-1 or batch-8 decoding step of GPT-2 small (the output head aside): each
//! reads a weight matrix of 2–9 MB from memory for one row of output, and one core does not
//! saturate the memory bus. Here the weight is cut into contiguous parts, one per thread:
//!
//! - a row-major weight `[k, n]` (a linear layer) by rows, i.e. over the depth `k`: each thread
//!   multiplies its slice of the input by a contiguous block of rows and the partial products are
//!   summed (the order of the sum over `k` changes, so values move by rounding, ~1e-7 relative);
//! - a transposed view `[k, n]` of an `[n, k]` matrix (a tied head) by columns: each thread
//!   computes a contiguous block of output columns (bit-identical).
//!
//! Only inference tensors on [`burn_flex::Flex`] take this path (an autodiff backend or another
//! device goes straight to Burn's `matmul`), with at most [`MAX_ROWS`] rows and enough work per
//! thread to pay for the hand-off. Measured in docs/performance.md.

use burn::prelude::*;
use burn::tensor::DType;
use burn_flex::Flex;
use rayon::prelude::*;

/// Products with more rows than this go to Flex (which parallelises them itself once large).
pub const MAX_ROWS: usize = 16;

/// Flex's own threshold (multiply-adds) above which it runs `gemm` on all threads.
const FLEX_PARALLEL_THRESHOLD: usize = 192 * 192 * 192;

/// Minimum multiply-adds per thread for the split to pay for handing work to the thread pool.
pub const MIN_WORK_PER_THREAD: usize = 256 * 1024;

/// Into how many parts to cut an `[m, k] × [k, n]` product of `dtype` on Flex, called from a pool
/// thread (1: do not cut).
fn parts(m: usize, k: usize, n: usize, dtype: DType) -> usize {
    let work = m * n * k;
    let qualifies = m <= MAX_ROWS
        && dtype == DType::F32
        && (2 * MIN_WORK_PER_THREAD..FLEX_PARALLEL_THRESHOLD).contains(&work);
    if qualifies {
        rayon::current_num_threads().min(work / MIN_WORK_PER_THREAD)
    } else {
        1
    }
}

/// Into how many parts to cut `lhs` `[m, k]` × `rhs` `[k, n]` (1: do not): [`split_depth`] for a
/// row-major weight, [`split_columns`] for a transposed view. Only inference tensors on Flex, on a
/// pool thread, are cut: from outside the pool, handing work over costs ~17 µs (the caller sleeps
/// on a lock); on a pool thread (see [`cuts_products`]) well under one.
pub fn parts_for<B: Backend>(lhs: &Tensor<B, 2>, rhs: &Tensor<B, 2>) -> usize {
    let ([m, k], [_, n]) = (lhs.dims(), rhs.dims());
    if is_flex::<B>() && rayon::current_thread_index().is_some() {
        parts(m, k, n, lhs.dtype())
    } else {
        1
    }
}

/// Whether a forward pass over `rows` positions of a model of width `hidden` and feed-forward width
/// `intermediate` in `dtype` on `B` has products this module cuts, so that running it on a pool
/// thread pays.
pub fn cuts_products<B: Backend>(
    rows: usize,
    hidden: usize,
    intermediate: usize,
    dtype: DType,
) -> bool {
    is_flex::<B>() && parts(rows, hidden, intermediate, dtype) > 1
}

/// Contiguous, nearly equal ranges covering `0..len`, one per part (a multiple of 16 long where
/// possible, so that column blocks start on a cache line).
fn ranges(len: usize, parts: usize) -> Vec<(usize, usize)> {
    let step = len.div_ceil(parts).next_multiple_of(16).min(len);
    (0..len)
        .step_by(step)
        .map(|start| (start, step.min(len - start)))
        .collect()
}

/// `Σ_p lhs[:, k_p] × rhs[k_p, :]`, one depth block `k_p` per thread.
pub fn split_depth<B: Backend>(lhs: Tensor<B, 2>, rhs: Tensor<B, 2>, parts: usize) -> Tensor<B, 2> {
    let k = lhs.dims()[1];
    ranges(k, parts)
        .into_par_iter()
        .map(|(start, len)| {
            lhs.clone()
                .narrow(1, start, len)
                .matmul(rhs.clone().narrow(0, start, len))
        })
        .reduce_with(|a, b| a + b)
        .expect("at least one part")
}

/// `[lhs × rhs[:, n_p]]_p` concatenated, one column block `n_p` per thread.
pub fn split_columns<B: Backend>(
    lhs: Tensor<B, 2>,
    rhs: Tensor<B, 2>,
    parts: usize,
) -> Tensor<B, 2> {
    let n = rhs.dims()[1];
    let blocks: Vec<Tensor<B, 2>> = ranges(n, parts)
        .into_par_iter()
        .map(|(start, len)| lhs.clone().matmul(rhs.clone().narrow(1, start, len)))
        .collect();
    Tensor::cat(blocks, 1)
}

/// Whether `B` is the CPU backend this path serves.
pub fn is_flex<B: Backend>() -> bool {
    std::any::TypeId::of::<B>() == std::any::TypeId::of::<Flex>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Autodiff;
    use burn::tensor::{Distribution, Tolerance};

    /// Both cuts give Burn's product (columns bit for bit, depth within rounding) on 2 and 3
    /// threads, including parts of unequal length.
    #[test]
    fn cuts_match_flex_matmul() {
        let device = Default::default();
        for (m, k, n) in [(1, 768, 2304), (8, 256, 704), (3, 100, 1000)] {
            let a = Tensor::<Flex, 2>::random([m, k], Distribution::Default, &device);
            let w = Tensor::<Flex, 2>::random([k, n], Distribution::Default, &device);
            let tied =
                Tensor::<Flex, 2>::random([n, k], Distribution::Default, &device).transpose();
            for parts in [2, 3] {
                let by_depth = split_depth(a.clone(), w.clone(), parts);
                by_depth.to_data().assert_approx_eq::<f32>(
                    &a.clone().matmul(w.clone()).to_data(),
                    Tolerance::rel_abs(1e-5, 1e-5),
                );
                assert_eq!(
                    split_columns(a.clone(), tied.clone(), parts).to_data(),
                    a.clone().matmul(tied.clone()).to_data(),
                    "{m}x{k}x{n} in {parts} column blocks"
                );
            }
        }
    }

    #[test]
    fn ranges_cover_the_dimension() {
        assert_eq!(ranges(768, 2), vec![(0, 384), (384, 384)]);
        assert_eq!(ranges(100, 3), vec![(0, 48), (48, 48), (96, 4)]);
        assert_eq!(ranges(10, 2), vec![(0, 10)]);
    }

    /// Only Flex inference tensors with few rows and enough work are cut.
    #[test]
    fn which_products_are_cut() {
        type Ad = Autodiff<Flex>;
        assert!(is_flex::<Flex>() && !is_flex::<Ad>());
        let device = Default::default();
        let flex = |m, k, n| {
            parts_for::<Flex>(
                &Tensor::zeros([m, k], &device),
                &Tensor::zeros([k, n], &device),
            )
        };
        let threads = rayon::current_num_threads();
        assert_eq!(flex(1, 768, 3072), 1, "outside the pool");
        let in_pool = rayon::scope(|_| flex(1, 768, 3072));
        assert_eq!(in_pool, threads.min(9));
        rayon::scope(|_| {
            assert_eq!(flex(1, 64, 64), 1, "too little work");
            assert_eq!(flex(32, 768, 3072), 1, "too many rows");
            assert_eq!(flex(16, 768, 768), 1, "Flex already parallel");
        });
        let ad = rayon::scope(|_| {
            parts_for::<Ad>(
                &Tensor::zeros([1, 768], &device),
                &Tensor::zeros([768, 3072], &device),
            )
        });
        assert_eq!(ad, 1);
    }
}
