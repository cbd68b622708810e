//! The trainable diffusion decoder: config, attention, layers, timestep embedding, the model, and
//! the encoder-to-decoder embedding map.

pub mod attention;
pub mod config;
pub mod embed_init;
pub mod layer;
pub mod model;
pub mod time;

pub use config::{DecoderConfig, EmbeddingInit};
pub use embed_init::pca_embedding;
pub use model::{mask_logit, SgddModel, MASK_LOGIT};

use burn::nn::Linear;
use burn::prelude::*;

/// A `[d_in, d_out]` linear layer with bias, N(0, std²) weights (latent-core's initialisation).
pub(crate) fn linear<B: Backend>(
    d_in: usize,
    d_out: usize,
    std: f64,
    device: &B::Device,
) -> Linear<B> {
    latent_core::model::init_linear(d_in, d_out, true, std, device)
}
