//! The causal LM backbones: shared pieces, one file per family for its config and weight names,
//! and loading/saving in Hugging Face layout.

mod attention;
mod block;
mod cast;
mod causal_lm;
pub mod gpt2;
mod input;
mod linear;
pub mod llama;
mod load;
mod mlp;
mod norm;
mod pretrained;
mod resize;
mod rope;
mod save;
pub mod weight_names;

pub use attention::Attention;
pub use block::DecoderLayer;
pub use cast::cast_module;
pub use causal_lm::{default_positions, CausalLm};
pub use input::{LmInput, LmOutput};
pub use linear::{flat_linear, flat_matmul_transposed, init_linear, FlatForward};
pub use mlp::Mlp;
pub use norm::Norm;
pub use pretrained::{check_vocab, Pretrained};
pub use rope::{Rope, RopeTables};
