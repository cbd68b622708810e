//! Hugging Face formats: `config.json`, safetensors checkpoints, the hub, tokenizers and chat templates.

pub mod chat_template;
pub mod config;
pub mod hub;
pub mod safetensors;
pub mod tokenizer;
