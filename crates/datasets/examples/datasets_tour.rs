//! A tour of latent-datasets on the shipped samples: load GSM8K and GSM8k-Aug, score predictions,
//! generate synthetic problems, and batch them.
//!
//! Run: `cargo run -p latent-datasets --example datasets_tour`

use latent_datasets::answer::{codi_correct, hrpo_reward};
use latent_datasets::batch::{encode_all, word_level_tokenizer, Batches, Collator, EncodeConfig};
use latent_datasets::batch::{Example, PaddingSide};
use latent_datasets::data_dir::sample;
use latent_datasets::synthetic::arithmetic::{ArithmeticConfig, ArithmeticGenerator};
use latent_datasets::synthetic::Split;
use latent_datasets::{gsm8k, icot, ReadOptions};

fn main() -> latent_datasets::Result<()> {
    let gsm = gsm8k::load(sample("gsm8k/test_sample.jsonl"), ReadOptions::strict())?;
    let first = &gsm.records[0];
    println!(
        "GSM8K: {} problems; first answer {}",
        gsm.records.len(),
        first.answer.text
    );
    println!(
        "  CODI check of \"The answer is: 18\": {}",
        codi_correct("The answer is: 18", &first.answer)
    );
    println!(
        "  HRPO reward of \"9*2=18 #### 18\": {}",
        hrpo_reward("9*2=18 #### 18", &first.answer.text)
    );

    let aug = icot::load(sample("gsm8k-aug/test_sample.txt"), ReadOptions::strict())?;
    println!(
        "GSM8k-Aug: {} lines; first CoT {}",
        aug.records.len(),
        aug.records[0].cot
    );

    let generator = ArithmeticGenerator::new(ArithmeticConfig::default(), 7)?;
    let synthetic = generator.load(Split::Train, 64)?.records;
    println!("synthetic: {}", synthetic[0].to_line());

    let tokenizer = word_level_tokenizer(synthetic.iter().map(|r| r.question.as_str()))?;
    let examples: Vec<Example> = synthetic
        .iter()
        .map(|r| Example::prompt_completion(&r.question, &format!("{} #### {}", r.cot, r.answer)))
        .collect();
    let (encoded, report) = encode_all(&tokenizer, &examples, &EncodeConfig::default())?;
    let collator = Collator {
        pad_id: 0,
        side: PaddingSide::Right,
    };
    let batches = Batches::new(&encoded, 16, collator, 7)?;
    let batch = batches.epoch(0).next().expect("at least one batch");
    println!(
        "batching: {} kept; {} batches per epoch; first batch {}x{}",
        report.kept,
        batches.len(),
        batch.batch_size,
        batch.seq_len
    );
    Ok(())
}
