//! Loading `tokenizer.json` with the `tokenizers` crate.

use std::path::Path;

use tokenizers::Tokenizer;

use crate::{CoreError, Result};

/// Loads a Hugging Face `tokenizer.json`.
pub fn load_tokenizer(path: impl AsRef<Path>) -> Result<Tokenizer> {
    let path = path.as_ref();
    Tokenizer::from_file(path).map_err(|e| CoreError::Tokenizer {
        path: path.into(),
        message: e.to_string(),
    })
}
