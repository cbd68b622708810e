//! The frozen BERT-family semantic encoder: config, weights, network, pooling.

pub mod bert;
pub mod config;
pub mod semantic;
pub mod weights;

pub use bert::BertModel;
pub use config::{EncoderConfig, PositionScheme};
pub use semantic::{masked_mean, SemanticEncoder, SpecialTokens};
