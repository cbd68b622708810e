//! Linear layers initialised the way transformers' `_init_weights` does (normal weights, zero bias).

use burn::module::Initializer;
use burn::nn::Linear;
use burn::prelude::*;

/// A lazily initialised `[d_in, d_out]` linear layer: weights ~ N(0, std²), bias 0.
pub fn init_linear<B: Backend>(
    d_in: usize,
    d_out: usize,
    bias: bool,
    std: f64,
    device: &B::Device,
) -> Linear<B> {
    Linear {
        weight: Initializer::Normal { mean: 0.0, std }.init([d_in, d_out], device),
        bias: bias.then(|| Initializer::Zeros.init([d_out], device)),
    }
}
