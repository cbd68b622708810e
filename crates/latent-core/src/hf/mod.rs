//! Hugging Face formats: `config.json`, safetensors checkpoints, the hub and tokenizers.

pub mod config;
pub mod hub;
pub mod safetensors;
pub mod tokenizer;
