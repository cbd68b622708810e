//! The causal LM backbones: one [`CausalLm`] for every family (the families differ in switches read
//! from `config.json`, see [`crate::hf`]), its shared pieces, the key/value cache its cached forward
//! writes, the linear layer that may carry a LoRA adapter, and loading/saving in Hugging Face layout.

mod attention;
mod block;
mod cast;
mod causal_lm;
pub mod few_rows_matmul;
mod input;
mod input_checks;
pub mod kv_cache;
mod linear;
mod load;
pub(crate) mod lora_linear;
mod mlp;
mod norm;
mod pretrained;
mod resize;
mod rope;
mod save;
mod token_logprobs;

pub use attention::Attention;
pub use block::DecoderLayer;
pub use cast::{cast_module, to_dtype, to_f32};
pub use causal_lm::{default_positions, CausalLm};
pub use input::{LmHidden, LmInput, LmOutput};
pub use kv_cache::{KvCache, LayerKv};
pub use linear::{flat_linear, flat_matmul_transposed, init_linear, FlatForward};
pub use lora_linear::{is_adapter_param, LoraLinear, LoraPair};
pub use mlp::Mlp;
pub use norm::Norm;
pub use pretrained::{check_vocab, Pretrained};
pub use resize::NewRowInit;
pub use rope::{Rope, RopeTables};
pub use token_logprobs::{LogprobLoss, LogprobOptions};
