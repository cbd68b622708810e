//! Prompts: questions with their gold answers, tokenised as HRPO does — the system prompt and the
//! question rendered with the model's chat template and the generation prompt, then encoded
//! without added special tokens — or, without a chat template, the question text alone.

use std::path::{Path, PathBuf};

use latent_core::hf::chat_template::{ChatMessage, ChatTemplate};
use latent_datasets::data_dir::resolve_data_path;
use latent_datasets::reader::ReadOptions;
use tokenizers::Tokenizer;

use crate::config::PromptFormat;
use crate::{GrpoError, Result};

/// One prompt of the data set.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptExample {
    /// The question as written.
    pub question: String,
    /// The gold answer as written (compared after HRPO's normalisation).
    pub gold: String,
    /// The prompt's token ids.
    pub ids: Vec<u32>,
}

/// Turns questions into prompt ids.
pub struct PromptBuilder {
    tokenizer: Tokenizer,
    tokenizer_path: PathBuf,
    template: Option<ChatTemplate>,
    system_prompt: String,
}

impl PromptBuilder {
    /// Renders with `template` (and `system_prompt`) when given, else encodes the question alone
    /// (with the tokenizer's special tokens).
    pub fn new(
        tokenizer: Tokenizer,
        tokenizer_path: PathBuf,
        template: Option<ChatTemplate>,
        system_prompt: &str,
    ) -> Self {
        Self {
            tokenizer,
            tokenizer_path,
            template,
            system_prompt: system_prompt.to_string(),
        }
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The prompt ids of `question`.
    pub fn ids(&self, question: &str) -> Result<Vec<u32>> {
        let (text, special) = match &self.template {
            Some(template) => {
                let mut messages = Vec::new();
                if !self.system_prompt.is_empty() {
                    messages.push(ChatMessage::new("system", self.system_prompt.as_str()));
                }
                messages.push(ChatMessage::new("user", question.trim()));
                (template.render(&messages, true)?, false)
            }
            None => (question.trim().to_string(), true),
        };
        let encoding =
            self.tokenizer
                .encode(text.as_str(), special)
                .map_err(|e| GrpoError::Tokenizer {
                    path: self.tokenizer_path.clone(),
                    message: format!("encoding a prompt: {e}"),
                })?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The prompts of a data file (relative paths are looked up under `LATENT_DATA_DIR`), the first
    /// `max` when given.
    pub fn load(
        &self,
        path: &Path,
        format: PromptFormat,
        max: Option<usize>,
    ) -> Result<Vec<PromptExample>> {
        let path = resolve_data_path(path);
        let mut pairs = read_pairs(&path, format)?;
        if let Some(max) = max {
            pairs.truncate(max);
        }
        if pairs.is_empty() {
            return Err(GrpoError::Empty(path.display().to_string()));
        }
        pairs
            .into_iter()
            .map(|(question, gold)| {
                Ok(PromptExample {
                    ids: self.ids(&question)?,
                    question,
                    gold,
                })
            })
            .collect()
    }
}

/// `(question, gold answer)` of every record of a prompt file.
fn read_pairs(path: &Path, format: PromptFormat) -> Result<Vec<(String, String)>> {
    Ok(match format {
        PromptFormat::Gsm8k => latent_datasets::gsm8k::load(path, ReadOptions::strict())?
            .into_records()
            .into_iter()
            .map(|r| (r.question, r.answer.text))
            .collect(),
        PromptFormat::Icot => latent_datasets::icot::load(path, ReadOptions::strict())?
            .into_records()
            .into_iter()
            .map(|r| (r.question, r.answer))
            .collect(),
    })
}

/// Records in a prompt file (relative paths under `LATENT_DATA_DIR`), without tokenising them.
pub fn count_prompts(path: &Path, format: PromptFormat) -> Result<usize> {
    Ok(read_pairs(&resolve_data_path(path), format)?.len())
}
