//! Hugging Face formats: `config.json` (one file per family for its layout and weight names),
//! safetensors checkpoints, the hub, tokenizers and chat templates. Nothing here depends on the
//! model: [`weight_names`] maps parameter paths (strings) to checkpoint keys.

pub mod chat_template;
pub mod config;
pub mod families;
mod gpt2;
pub mod hub;
mod llama;
pub mod safetensors;
pub mod tokenizer;
pub mod weight_names;
