//! Rotary position embeddings in Hugging Face's `rotate_half` convention, with Llama-3 and linear
//! frequency scaling.

use burn::prelude::*;
use burn::tensor::DType;

use crate::hf::config::{RopeConfig, RopeScaling};

/// Inverse frequencies of one head; the cos/sin tables are computed from position ids per call,
/// so any position (left padding, KV-cache offsets) is exact.
#[derive(Debug, Clone)]
pub struct Rope {
    inv_freq: Vec<f32>,
}

impl Rope {
    /// Frequencies for heads of width `head_dim`.
    pub fn new(config: &RopeConfig, head_dim: usize) -> Self {
        let base: Vec<f64> = (0..head_dim / 2)
            .map(|i| 1.0 / config.theta.powf((2 * i) as f64 / head_dim as f64))
            .collect();
        let inv_freq = match config.scaling {
            RopeScaling::None => base,
            RopeScaling::Linear { factor } => base.iter().map(|f| f / factor).collect(),
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings: old_len,
            } => {
                let low_wavelen = old_len / low_freq_factor;
                let high_wavelen = old_len / high_freq_factor;
                base.iter()
                    .map(|&f| {
                        let wavelen = 2.0 * std::f64::consts::PI / f;
                        if wavelen < high_wavelen {
                            f
                        } else if wavelen > low_wavelen {
                            f / factor
                        } else {
                            let smooth = (old_len / wavelen - low_freq_factor)
                                / (high_freq_factor - low_freq_factor);
                            (1.0 - smooth) * f / factor + smooth * f
                        }
                    })
                    .collect()
            }
        };
        Self {
            inv_freq: inv_freq.into_iter().map(|f| f as f32).collect(),
        }
    }

    /// cos and sin tables for `positions` `[batch, seq]`, repeated for `heads`: each
    /// `[batch, heads, seq, head_dim]`, in `dtype`. They are materialised at the full shape because
    /// element-wise ops on Flex are much faster without broadcasting.
    pub fn tables<B: Backend>(
        &self,
        positions: Tensor<B, 2, Int>,
        heads: usize,
        dtype: DType,
    ) -> RopeTables<B> {
        let device = positions.device();
        let half = self.inv_freq.len();
        let inv_freq = Tensor::<B, 1>::from_data(
            TensorData::new(self.inv_freq.clone(), [half]),
            (&device, DType::F32),
        )
        .reshape([1, 1, half]);
        let freqs = positions.float().cast(DType::F32).unsqueeze_dim::<3>(2) * inv_freq;
        let angles = Tensor::cat(vec![freqs.clone(), freqs], 2).unsqueeze_dim::<4>(1);
        let (cos, sin) = (angles.clone().cos(), angles.sin());
        let (cos, sin) = if dtype == DType::F32 {
            (cos, sin)
        } else {
            (cos.cast(dtype), sin.cast(dtype))
        };
        RopeTables {
            cos: cos.repeat_dim(1, heads),
            sin: sin.repeat_dim(1, heads),
        }
    }

    /// Rotates `x` `[batch, heads, seq, head_dim]` by tables of the same shape from [`Rope::tables`].
    pub fn apply<B: Backend>(x: Tensor<B, 4>, tables: &RopeTables<B>) -> Tensor<B, 4> {
        let RopeTables { cos, sin } = tables;
        let [b, h, s, d] = x.dims();
        let x1 = x.clone().slice([0..b, 0..h, 0..s, 0..d / 2]);
        let x2 = x.clone().slice([0..b, 0..h, 0..s, d / 2..d]);
        let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
        x * cos.clone() + rotated * sin.clone()
    }
}

/// cos and sin of every position's angles, `[batch, heads, seq, head_dim]` each.
#[derive(Debug, Clone)]
pub struct RopeTables<B: Backend> {
    /// cos table.
    pub cos: Tensor<B, 4>,
    /// sin table.
    pub sin: Tensor<B, 4>,
}
