//! Where a model parameter lives in a Hugging Face checkpoint.

/// A parameter's place in a Hugging Face checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct HfRef {
    /// Keys to try, in order (e.g. with and without the `model.` prefix).
    pub keys: Vec<String>,
    /// The stored matrix is the transpose of Burn's (PyTorch `Linear` is `[out, in]`).
    pub transposed: bool,
    /// The parameter is part `index` of `count` equal slices of the stored tensor's last axis
    /// (GPT-2's fused `c_attn`).
    pub part: Option<(usize, usize)>,
}

impl HfRef {
    /// One key, no split.
    pub(crate) fn plain(key: &str, transposed: bool) -> Self {
        Self {
            keys: vec![key.to_string()],
            transposed,
            part: None,
        }
    }

    /// Adds a fallback key (checkpoints saved from the bare base model lack the prefix).
    pub(crate) fn or_unprefixed(mut self, key: &str) -> Self {
        self.keys.push(key.to_string());
        self
    }

    /// The key written on save (the first one).
    pub fn save_key(&self) -> &str {
        &self.keys[0]
    }
}

#[cfg(test)]
mod tests {
    use crate::hf::config::Family;
    use crate::hf::families::hf_ref;

    #[test]
    fn llama_keys() {
        let r = hf_ref(Family::Llama, "layers.2.self_attn.q_proj.weight");
        assert_eq!(
            r.keys,
            [
                "model.layers.2.self_attn.q_proj.weight",
                "layers.2.self_attn.q_proj.weight"
            ]
        );
        assert!(r.transposed);
        let r = hf_ref(Family::Qwen3, "layers.0.self_attn.q_norm.weight");
        assert!(!r.transposed);
        assert!(!hf_ref(Family::Llama, "embed_tokens.weight").transposed);
        assert!(!hf_ref(Family::Llama, "layers.1.input_layernorm.weight").transposed);
        let r = hf_ref(Family::Llama, "lm_head.weight");
        assert_eq!(r.keys, ["lm_head.weight"]);
        assert!(r.transposed);
    }
}
