//! Batching: tokenisation with any `tokenizers` tokenizer, label masks, length limits (with counts),
//! left or right padding with attention masks and position ids, deterministic shuffles and
//! train/valid splits, epoch iteration, and streaming batches for data that does not fit in memory.

use std::collections::HashMap;

use tokenizers::models::wordlevel::WordLevel;
use tokenizers::pre_tokenizers::whitespace::Whitespace;
use tokenizers::Tokenizer;

use crate::error::{DataError, Result};
use crate::rng::SplitMix64;

/// Label value of positions the loss ignores (PyTorch's `ignore_index`).
pub const IGNORE_INDEX: i64 = -100;

/// A piece of text, tokenized on its own; `train` says whether its tokens are labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The text.
    pub text: String,
    /// Whether the loss covers its tokens.
    pub train: bool,
}

/// One example: segments tokenized separately and concatenated (as CODI does for question, CoT
/// and answer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Example {
    /// The segments, in order.
    pub segments: Vec<Segment>,
}

impl Example {
    /// A prompt (ignored by the loss) followed by a completion (trained).
    pub fn prompt_completion(prompt: &str, completion: &str) -> Self {
        Self::default().ignored(prompt).trained(completion)
    }
    /// Appends a segment the loss ignores.
    pub fn ignored(mut self, text: &str) -> Self {
        self.segments.push(Segment {
            text: text.to_string(),
            train: false,
        });
        self
    }
    /// Appends a segment the loss covers.
    pub fn trained(mut self, text: &str) -> Self {
        self.segments.push(Segment {
            text: text.to_string(),
            train: true,
        });
        self
    }
}

/// What to do with sequences longer than the limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LengthPolicy {
    /// Drop the example (CODI drops examples over `max_token_num`).
    #[default]
    Drop,
    /// Keep the first `max_len` tokens.
    TruncateRight,
    /// Keep the last `max_len` tokens.
    TruncateLeft,
}

/// Tokenisation settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncodeConfig {
    /// Longest sequence kept (special tokens included); `None` for no limit.
    pub max_len: Option<usize>,
    /// What to do past `max_len`.
    pub policy: LengthPolicy,
    /// Token put first (not a label).
    pub bos_id: Option<u32>,
    /// Token put last (a label when the last segment is trained).
    pub eos_id: Option<u32>,
}

/// A tokenized example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Token ids.
    pub input_ids: Vec<u32>,
    /// One label per token: the token id, or [`IGNORE_INDEX`] where the loss ignores it.
    pub labels: Vec<i64>,
}

impl Encoded {
    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.input_ids.len()
    }
    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.input_ids.is_empty()
    }
}

/// Counts from [`encode_all`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncodeReport {
    /// Examples kept (truncated ones included).
    pub kept: usize,
    /// Examples dropped for length.
    pub dropped: usize,
    /// Examples truncated.
    pub truncated: usize,
}

/// Tokenizes one example (no special tokens added by the tokenizer). `Ok(None)` when it is too
/// long under [`LengthPolicy::Drop`]; the `bool` says whether it was truncated.
pub fn encode(
    tokenizer: &Tokenizer,
    example: &Example,
    config: &EncodeConfig,
) -> Result<Option<(Encoded, bool)>> {
    let mut input_ids = Vec::new();
    let mut labels = Vec::new();
    if let Some(bos) = config.bos_id {
        input_ids.push(bos);
        labels.push(IGNORE_INDEX);
    }
    for seg in &example.segments {
        let enc = tokenizer
            .encode(seg.text.as_str(), false)
            .map_err(|e| DataError::Tokenizer(e.to_string()))?;
        for &id in enc.get_ids() {
            input_ids.push(id);
            labels.push(if seg.train {
                i64::from(id)
            } else {
                IGNORE_INDEX
            });
        }
    }
    if let Some(eos) = config.eos_id {
        let train = example.segments.last().is_some_and(|s| s.train);
        input_ids.push(eos);
        labels.push(if train { i64::from(eos) } else { IGNORE_INDEX });
    }
    let mut truncated = false;
    if let Some(max) = config.max_len {
        if input_ids.len() > max {
            match config.policy {
                LengthPolicy::Drop => return Ok(None),
                LengthPolicy::TruncateRight => {
                    input_ids.truncate(max);
                    labels.truncate(max);
                }
                LengthPolicy::TruncateLeft => {
                    let cut = input_ids.len() - max;
                    input_ids.drain(..cut);
                    labels.drain(..cut);
                }
            }
            truncated = true;
        }
    }
    Ok(Some((Encoded { input_ids, labels }, truncated)))
}

/// Tokenizes many examples and reports how many were kept, dropped and truncated.
pub fn encode_all<'a>(
    tokenizer: &Tokenizer,
    examples: impl IntoIterator<Item = &'a Example>,
    config: &EncodeConfig,
) -> Result<(Vec<Encoded>, EncodeReport)> {
    let mut out = Vec::new();
    let mut report = EncodeReport::default();
    for ex in examples {
        match encode(tokenizer, ex, config)? {
            Some((enc, truncated)) => {
                report.kept += 1;
                report.truncated += usize::from(truncated);
                out.push(enc);
            }
            None => report.dropped += 1,
        }
    }
    Ok((out, report))
}

/// Which side padding goes on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PaddingSide {
    /// Pad after the tokens (training).
    #[default]
    Right,
    /// Pad before the tokens (batched generation).
    Left,
}

/// A padded batch, every tensor row-major `[batch_size, seq_len]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Rows.
    pub batch_size: usize,
    /// Columns (the longest sequence of the batch).
    pub seq_len: usize,
    /// Token ids, pad id at padding.
    pub input_ids: Vec<u32>,
    /// 1 for tokens, 0 for padding.
    pub attention_mask: Vec<u32>,
    /// Labels, [`IGNORE_INDEX`] at padding and ignored positions.
    pub labels: Vec<i64>,
    /// Position of each token counted from the sequence's first real token (0 at padding), so
    /// left padding does not shift positions.
    pub position_ids: Vec<u32>,
    /// Real length of each row.
    pub lengths: Vec<usize>,
}

/// Pads sequences into a [`Batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collator {
    /// The pad token id.
    pub pad_id: u32,
    /// Where padding goes.
    pub side: PaddingSide,
}

impl Collator {
    /// Pads `items` to the longest one.
    pub fn collate<'a>(&self, items: impl IntoIterator<Item = &'a Encoded>) -> Batch {
        let items: Vec<&Encoded> = items.into_iter().collect();
        let seq_len = items.iter().map(|e| e.len()).max().unwrap_or(0);
        let n = items.len() * seq_len;
        let mut b = Batch {
            batch_size: items.len(),
            seq_len,
            input_ids: Vec::with_capacity(n),
            attention_mask: Vec::with_capacity(n),
            labels: Vec::with_capacity(n),
            position_ids: Vec::with_capacity(n),
            lengths: items.iter().map(|e| e.len()).collect(),
        };
        for e in items {
            let pad = seq_len - e.len();
            let push_pad = |b: &mut Batch| {
                for _ in 0..pad {
                    b.input_ids.push(self.pad_id);
                    b.attention_mask.push(0);
                    b.labels.push(IGNORE_INDEX);
                    b.position_ids.push(0);
                }
            };
            if self.side == PaddingSide::Left {
                push_pad(&mut b);
            }
            b.input_ids.extend_from_slice(&e.input_ids);
            b.attention_mask.extend(std::iter::repeat_n(1, e.len()));
            b.labels.extend_from_slice(&e.labels);
            b.position_ids.extend(0..e.len() as u32);
            if self.side == PaddingSide::Right {
                push_pad(&mut b);
            }
        }
        b
    }
}

/// `0..n` in an order fixed by `seed`.
pub fn shuffled_indices(n: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    SplitMix64::new(seed).shuffle(&mut idx);
    idx
}

/// Splits `items` into (train, valid) by `seed`: `valid_fraction` of them (rounded) go to valid.
/// Each part keeps the original order.
pub fn train_valid_split<T>(
    items: Vec<T>,
    valid_fraction: f64,
    seed: u64,
) -> Result<(Vec<T>, Vec<T>)> {
    if !(0.0..=1.0).contains(&valid_fraction) {
        return Err(DataError::Config {
            key: "valid_fraction",
            reason: format!("{valid_fraction} is not in [0, 1]"),
        });
    }
    let n = items.len();
    let n_valid = ((n as f64) * valid_fraction).round() as usize;
    let mut is_valid = vec![false; n];
    for &i in shuffled_indices(n, seed).iter().take(n_valid) {
        is_valid[i] = true;
    }
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    for (item, v) in items.into_iter().zip(is_valid) {
        if v {
            valid.push(item);
        } else {
            train.push(item);
        }
    }
    Ok((train, valid))
}

/// Epoch iteration over data in memory: each epoch a fresh order derived from the seed and the
/// epoch number.
#[derive(Debug, Clone)]
pub struct Batches<'a> {
    data: &'a [Encoded],
    batch_size: usize,
    collator: Collator,
    seed: u64,
    shuffle: bool,
    drop_last: bool,
}

impl<'a> Batches<'a> {
    /// Batches of `batch_size` (> 0), shuffled per epoch, the last partial batch kept.
    pub fn new(
        data: &'a [Encoded],
        batch_size: usize,
        collator: Collator,
        seed: u64,
    ) -> Result<Self> {
        if batch_size == 0 {
            return Err(DataError::Config {
                key: "batch_size",
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            data,
            batch_size,
            collator,
            seed,
            shuffle: true,
            drop_last: false,
        })
    }
    /// Keep file order (evaluation).
    pub fn sequential(mut self) -> Self {
        self.shuffle = false;
        self
    }
    /// Drop a last batch smaller than `batch_size`.
    pub fn drop_last(mut self) -> Self {
        self.drop_last = true;
        self
    }
    /// Batches per epoch.
    pub fn len(&self) -> usize {
        if self.drop_last {
            self.data.len() / self.batch_size
        } else {
            self.data.len().div_ceil(self.batch_size)
        }
    }
    /// Whether an epoch has no batch.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The example order of epoch `epoch`.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        if self.shuffle {
            let mut mix = SplitMix64::with_stream(self.seed, epoch);
            shuffled_indices(self.data.len(), mix.next_u64())
        } else {
            (0..self.data.len()).collect()
        }
    }
    /// The batches of epoch `epoch`.
    pub fn epoch(&self, epoch: u64) -> impl Iterator<Item = Batch> + '_ {
        let order = self.order(epoch);
        let n_batches = self.len();
        (0..n_batches).map(move |b| {
            let chunk = &order[b * self.batch_size..((b + 1) * self.batch_size).min(order.len())];
            self.collator.collate(chunk.iter().map(|&i| &self.data[i]))
        })
    }
}

/// Batches from a stream of encoded examples, optionally shuffled through a buffer of
/// `buffer` examples (0: stream order). Memory is bounded by the buffer and one batch.
pub struct StreamBatches<I> {
    source: I,
    batch_size: usize,
    collator: Collator,
    buffer: Vec<Encoded>,
    buffer_size: usize,
    rng: SplitMix64,
}

impl<I: Iterator<Item = Encoded>> StreamBatches<I> {
    /// Streams `source` in batches of `batch_size` (0 is treated as 1).
    pub fn new(source: I, batch_size: usize, collator: Collator, buffer: usize, seed: u64) -> Self {
        Self {
            source,
            batch_size: batch_size.max(1),
            collator,
            buffer: Vec::with_capacity(buffer),
            buffer_size: buffer,
            rng: SplitMix64::new(seed),
        }
    }

    fn next_example(&mut self) -> Option<Encoded> {
        if self.buffer_size == 0 {
            return self.source.next();
        }
        while self.buffer.len() < self.buffer_size {
            match self.source.next() {
                Some(e) => self.buffer.push(e),
                None => break,
            }
        }
        if self.buffer.is_empty() {
            return None;
        }
        let i = self.rng.below(self.buffer.len() as u64) as usize;
        Some(self.buffer.swap_remove(i))
    }
}

impl<I: Iterator<Item = Encoded>> Iterator for StreamBatches<I> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let items: Vec<Encoded> = (0..self.batch_size)
            .map_while(|_| self.next_example())
            .collect();
        (!items.is_empty()).then(|| self.collator.collate(&items))
    }
}

/// Splits text as the `Whitespace` pre-tokenizer does (`\w+|[^\w\s]+`).
fn words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut prev: Option<bool> = None;
    for c in text.chars() {
        if c.is_whitespace() {
            prev = None;
            continue;
        }
        let word = c.is_alphanumeric() || c == '_';
        match (prev, out.last_mut()) {
            (Some(p), Some(last)) if p == word => last.push(c),
            _ => out.push(c.to_string()),
        }
        prev = Some(word);
    }
    out
}

/// Special tokens of [`word_level_tokenizer`], ids 0 to 3.
pub const TOY_SPECIALS: [&str; 4] = ["[PAD]", "[UNK]", "[BOS]", "[EOS]"];

/// A small word-level tokenizer built in memory from the words of `texts` (ids in first-seen
/// order after [`TOY_SPECIALS`]), for tests and CPU-sized experiments; no download.
pub fn word_level_tokenizer<'a>(texts: impl IntoIterator<Item = &'a str>) -> Result<Tokenizer> {
    let mut vocab: HashMap<String, u32> = HashMap::new();
    for s in TOY_SPECIALS {
        let id = vocab.len() as u32;
        vocab.insert(s.to_string(), id);
    }
    for text in texts {
        for w in words(text) {
            let id = vocab.len() as u32;
            vocab.entry(w).or_insert(id);
        }
    }
    let model = WordLevel::builder()
        .vocab(vocab.into_iter().collect())
        .unk_token("[UNK]".to_string())
        .build()
        .map_err(|e| DataError::Tokenizer(e.to_string()))?;
    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_pre_tokenizer(Some(Whitespace {}));
    Ok(tokenizer)
}
