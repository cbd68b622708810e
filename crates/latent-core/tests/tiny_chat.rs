//! A complete model directory (weights, tokenizer.json, tokenizer_config.json with the Qwen2.5 chat
//! template): chat rendering, tokenisation, generation with stop strings, reproducible sampling.

mod common;

use burn::tensor::DType;
use common::*;
use latent_core::hf::chat_template::{ChatMessage, ChatTemplate};
use latent_core::infer::{generate, GenerateConfig, SamplingConfig};
use latent_core::Pretrained;

#[test]
fn chat_prompt_generates_reproducibly_and_honours_stop_strings() {
    let dir = fixture_dir("tiny-chat");
    let lm = Pretrained::<B>::load(dir.to_str().unwrap(), &Default::default(), DType::F32).unwrap();
    let tokenizer = lm.tokenizer.as_ref().expect("tokenizer.json");
    let template = ChatTemplate::from_tokenizer_config(dir.join("tokenizer_config.json")).unwrap();
    let text = template
        .render(&[ChatMessage::new("user", "What is 3 times 4?")], true)
        .unwrap();
    assert!(text.starts_with("<|im_start|>system\n") && text.ends_with("<|im_start|>assistant\n"));
    let ids = tokenizer
        .encode(text.as_str(), false)
        .unwrap()
        .get_ids()
        .to_vec();
    assert_eq!(ids[0], tokenizer.token_to_id("<|im_start|>").unwrap());

    let config = GenerateConfig {
        max_new_tokens: 24,
        sampling: SamplingConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.95,
            seed: 11,
        },
        eos_token_ids: lm.model.config().eos_token_ids.clone(),
        ..Default::default()
    };
    let a = generate(
        &lm.model,
        Some(tokenizer),
        std::slice::from_ref(&ids),
        &config,
    )
    .unwrap();
    let b = generate(
        &lm.model,
        Some(tokenizer),
        std::slice::from_ref(&ids),
        &config,
    )
    .unwrap();
    assert_eq!(a.texts, b.texts);
    assert_eq!(a.texts[0], tokenizer.decode(&a.tokens[0], true).unwrap());

    // Stop at a piece of the text generated above: the output is cut before it.
    let piece: String = a.texts[0].chars().skip(3).take(2).collect();
    assert_eq!(
        piece.chars().count(),
        2,
        "generated text too short: {:?}",
        a.texts[0]
    );
    let stopped = generate(
        &lm.model,
        Some(tokenizer),
        &[ids],
        &GenerateConfig {
            stop_strings: vec![piece.clone()],
            ..config
        },
    )
    .unwrap();
    assert!(
        !stopped.texts[0].contains(&piece),
        "{:?} still holds {piece:?}",
        stopped.texts[0]
    );
    assert!(stopped.tokens[0].len() < a.tokens[0].len());
}

#[test]
fn vocab_size_comes_from_the_tokenizer() {
    // Requirement 9 of specs/sgdd.md §5: a model whose embedding is smaller than the tokenizer is refused.
    let dir = fixture_dir("tiny-chat");
    let tokenizer = latent_core::hf::tokenizer::load_tokenizer(dir.join("tokenizer.json")).unwrap();
    let mut config = latent_core::ModelConfig::from_file(dir.join("config.json")).unwrap();
    latent_core::model::check_vocab(&tokenizer, &config, &dir.join("tokenizer.json")).unwrap();
    config.vocab_size = tokenizer.get_vocab_size(true) - 1;
    let msg = latent_core::model::check_vocab(&tokenizer, &config, &dir.join("tokenizer.json"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("tokenizer.json") && msg.contains("vocab_size") && msg.contains("400"),
        "{msg}"
    );
}
