//! The encoder → decoder embedding map ("initialised from the encoder"): the encoder's token
//! embeddings `[vocab, e]` (768 for RoBERTa-base, 384 for MiniLM) are centred and projected onto
//! their top principal directions (eigenvectors of the `e × e` covariance, computed with nalgebra,
//! largest eigenvalue first), then scaled so the entries have the decoder's init std. When the
//! decoder is wider than the encoder, the extra columns are N(0, std²) (seeded).

use nalgebra::{DMatrix, SymmetricEigen};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `weights` `[vocab, e]` (row-major) → `[vocab, d]` (row-major).
pub fn pca_embedding(
    weights: &[f32],
    vocab: usize,
    e: usize,
    d: usize,
    std: f64,
    seed: u64,
) -> Vec<f32> {
    assert_eq!(weights.len(), vocab * e, "weights are not [vocab, e]");
    let mut x =
        DMatrix::<f64>::from_iterator(e, vocab, weights.iter().map(|&v| v as f64)).transpose();
    for c in 0..e {
        let mean = x.column(c).mean();
        x.column_mut(c).add_scalar_mut(-mean);
    }
    let cov = (x.transpose() * &x) / vocab as f64;
    let eig = SymmetricEigen::new(cov);
    let mut order: Vec<usize> = (0..e).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let k = d.min(e);
    let p = DMatrix::<f64>::from_fn(e, k, |r, c| eig.eigenvectors[(r, order[c])]);
    let y = &x * p;
    let rms = (y.iter().map(|v| v * v).sum::<f64>() / y.len().max(1) as f64).sqrt();
    let scale = if rms > 0.0 { std / rms } else { 0.0 };
    let mut rng = StdRng::seed_from_u64(seed);
    let mut normal = move || {
        // Box-Muller.
        let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    };
    let mut out = Vec::with_capacity(vocab * d);
    for r in 0..vocab {
        for c in 0..d {
            let v = if c < k {
                y[(r, c)] * scale
            } else {
                normal() * std
            };
            out.push(v as f32);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_dominant_direction_and_the_requested_scale() {
        // Points along (1, 2, 0) with small noise in the other directions.
        let vocab = 200;
        let mut w = Vec::new();
        for i in 0..vocab {
            let a = (i as f32 - 100.0) / 10.0;
            let n = ((i * 7919) % 13) as f32 / 130.0;
            w.extend([a + n, 2.0 * a - n, n]);
        }
        let y = pca_embedding(&w, vocab, 3, 1, 0.02, 0);
        let rms = (y.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / vocab as f64).sqrt();
        assert!((rms - 0.02).abs() < 1e-6, "{rms}");
        // The first coordinate is an affine function of `a` (up to sign): correlation ≈ ±1.
        let a: Vec<f64> = (0..vocab).map(|i| (i as f64 - 100.0) / 10.0).collect();
        let ma = a.iter().sum::<f64>() / vocab as f64;
        let my = y.iter().map(|&v| v as f64).sum::<f64>() / vocab as f64;
        let cov: f64 = a
            .iter()
            .zip(&y)
            .map(|(x, v)| (x - ma) * (*v as f64 - my))
            .sum();
        let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
        let vy: f64 = y.iter().map(|v| (*v as f64 - my).powi(2)).sum();
        assert!((cov / (va * vy).sqrt()).abs() > 0.999);
        // Wider than the encoder: extra columns are random with the init std.
        let wide = pca_embedding(&w, vocab, 3, 8, 0.02, 1);
        assert_eq!(wide.len(), vocab * 8);
        let extra: Vec<f64> = wide
            .chunks(8)
            .flat_map(|r| r[3..].iter().map(|&v| v as f64))
            .collect();
        let s = (extra.iter().map(|v| v * v).sum::<f64>() / extra.len() as f64).sqrt();
        assert!((s - 0.02).abs() < 0.003, "{s}");
    }
}
