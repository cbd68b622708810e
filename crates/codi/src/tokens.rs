//! CODI's special tokens: padding, `<bot>` (begin of thoughts) and `<eot>` (end of thoughts).

use serde::{Deserialize, Serialize};

/// The ids CODI adds to a base vocabulary of `base_vocab` rows: `pad = V0` (unless the tokenizer
/// already has a padding id), `<bot> = V0 + 1`, `<eot> = V0 + 2` (one lower each when the pad is
/// kept). Saved with every checkpoint so the ids never move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecialTokens {
    /// Embedding rows of the base model before resizing (`V0`).
    pub base_vocab: usize,
    /// Padding id.
    pub pad: u32,
    /// `<bot>`: begins the continuous thoughts.
    pub bot: u32,
    /// `<eot>`: ends them; excluded from arg-max at inference.
    pub eot: u32,
    /// End of sequence.
    pub eos: u32,
}

impl SpecialTokens {
    /// Assigns the ids after a base vocabulary of `base_vocab` rows. `pad` keeps an existing
    /// padding id; otherwise a new one is appended first.
    pub fn assign(base_vocab: usize, pad: Option<u32>, eos: u32) -> Self {
        let next = base_vocab as u32;
        match pad {
            Some(pad) => Self {
                base_vocab,
                pad,
                bot: next,
                eot: next + 1,
                eos,
            },
            None => Self {
                base_vocab,
                pad: next,
                bot: next + 1,
                eot: next + 2,
                eos,
            },
        }
    }

    /// Embedding rows after resizing.
    pub fn vocab_size(&self) -> usize {
        (self.eot as usize + 1).max(self.pad as usize + 1)
    }

    /// Whether `id` is one of the ids CODI added (never decoded as text).
    pub fn is_added(&self, id: u32) -> bool {
        id as usize >= self.base_vocab
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt2_layout_and_kept_pad() {
        let t = SpecialTokens::assign(50257, None, 50256);
        assert_eq!(
            (t.pad, t.bot, t.eot, t.vocab_size()),
            (50257, 50258, 50259, 50260)
        );
        let t = SpecialTokens::assign(100, Some(0), 3);
        assert_eq!((t.pad, t.bot, t.eot, t.vocab_size()), (0, 100, 101, 102));
        assert!(t.is_added(101) && !t.is_added(99));
    }
}
