//! A tiny random CODI model, its word-level tokenizer and a few synthetic problems, for tests.

use std::path::Path;

use latent_core::{CausalLm, CpuBackend, ModelConfig};
use latent_datasets::batch::word_level_tokenizer;
use latent_datasets::synthetic::arithmetic::{ArithmeticConfig, ArithmeticGenerator, Op};
use latent_datasets::synthetic::Split;
use latent_datasets::LineFormat;
use tokenizers::Tokenizer;

use crate::data::{prepare, PrepConfig, Problem, Tokenized};
use crate::experiment::tiny_llama_config;
use crate::model::{CodiMeta, CodiModel, CODI_FORMAT, CODI_FORMAT_VERSION};
use crate::projection::ProjectionConfig;
use crate::tokens::SpecialTokens;

/// Seven synthetic problems of three equations (so two kept CoT steps).
pub fn problems() -> Vec<Problem> {
    let generator = ArithmeticGenerator::new(
        ArithmeticConfig {
            steps: 3,
            operand_min: 1,
            operand_max: 9,
            operators: vec![Op::Add, Op::Sub],
            max_value: 30,
            ..ArithmeticConfig::default()
        },
        5,
    )
    .unwrap();
    let lines = generator.generate(Split::Train, 7).join("\n");
    latent_datasets::icot::Icot::default()
        .load_str(
            "<synthetic>",
            &lines,
            latent_datasets::ReadOptions::strict(),
        )
        .unwrap()
        .records
        .iter()
        .map(Problem::from)
        .collect()
}

/// The projection of [`tiny_setup`]'s model.
pub fn tiny_projection() -> ProjectionConfig {
    ProjectionConfig {
        hidden: 32,
        dim: 32,
        layer_norm: true,
        dropout: 0.0,
    }
}

/// The tokenizer (covering every number up to 30), a random width-32 two-block model with a
/// projection, and the problems prepared.
pub fn tiny_setup() -> (CodiModel<CpuBackend>, Tokenizer, Vec<Tokenized>) {
    let problems = problems();
    let numbers: Vec<String> = (0..=30).map(|n| n.to_string()).collect();
    let mut texts: Vec<String> = vec!["The answer is: 0 <<1+1=2>> ####".into()];
    texts.extend(numbers);
    texts.extend(problems.iter().map(|p| p.question.clone()));
    let tokenizer = word_level_tokenizer(texts.iter().map(String::as_str)).unwrap();
    let vocab = tokenizer.get_vocab_size(true);
    let json = tiny_llama_config(vocab, 32, 2, 4).to_string();
    let config = ModelConfig::from_json_str(&json, Path::new("<tiny>")).unwrap();
    let device = Default::default();
    let lm = CausalLm::<CpuBackend>::new(&config, &device);
    let tokens = SpecialTokens::assign(vocab, Some(0), 3);
    let model = CodiModel::from_base(lm, tokens, Some(&tiny_projection())).unwrap();
    let (examples, _) = prepare(&problems, &tokenizer, &PrepConfig::default()).unwrap();
    (model, tokenizer, examples)
}

/// The `codi.json` of [`tiny_setup`]'s model as a CODI model feeding `num_latent` thoughts.
pub fn tiny_meta(model: &CodiModel<CpuBackend>, num_latent: usize) -> CodiMeta {
    CodiMeta {
        format: CODI_FORMAT.into(),
        version: CODI_FORMAT_VERSION,
        task: crate::Task::Codi,
        tokens: model.tokens,
        num_latent,
        projection: Some(tiny_projection()),
        add_bos: false,
        answer_prefix: "The answer is: ".into(),
        base_model: "tiny".into(),
    }
}
