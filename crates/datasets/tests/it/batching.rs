//! Batching: tokenisation, label masks, padding, length policies, shuffles, epochs, streaming.

use latent_datasets::batch::{
    encode_all, shuffled_indices, train_valid_split, word_level_tokenizer, Batches, Collator,
    EncodeConfig, Encoded, Example, LengthPolicy, PaddingSide, StreamBatches, IGNORE_INDEX,
};
use latent_datasets::data_dir::sample;
use latent_datasets::icot;
use latent_datasets::ReadOptions;

fn examples() -> Vec<Example> {
    vec![
        Example::prompt_completion("how many apples", "three apples"),
        Example::prompt_completion("one", "two three four five"),
        Example::default().ignored("a").trained("b").ignored("c"),
    ]
}

fn tokenizer() -> tokenizers::Tokenizer {
    word_level_tokenizer(["how many apples three one two four five a b c"]).unwrap()
}

#[test]
fn labels_mask_prompts_and_padding() {
    let tok = tokenizer();
    let config = EncodeConfig {
        eos_id: Some(3),
        bos_id: Some(2),
        ..EncodeConfig::default()
    };
    let (enc, report) = encode_all(&tok, &examples(), &config).unwrap();
    assert_eq!(report.kept, 3);
    let ids = |w: &str| i64::from(tok.token_to_id(w).unwrap());
    assert_eq!(enc[0].input_ids.len(), 1 + 3 + 2 + 1);
    assert_eq!(
        enc[0].labels,
        [
            IGNORE_INDEX,
            IGNORE_INDEX,
            IGNORE_INDEX,
            IGNORE_INDEX,
            ids("three"),
            ids("apples"),
            3
        ]
    );
    // The last segment is ignored, so EOS is not a label either.
    assert_eq!(
        enc[2].labels,
        [
            IGNORE_INDEX,
            IGNORE_INDEX,
            ids("b"),
            IGNORE_INDEX,
            IGNORE_INDEX
        ]
    );

    let right = Collator {
        pad_id: 0,
        side: PaddingSide::Right,
    }
    .collate(&enc);
    assert_eq!((right.batch_size, right.seq_len), (3, 7));
    assert_eq!(&right.attention_mask[14..], [1, 1, 1, 1, 1, 0, 0]);
    assert_eq!(&right.input_ids[19..], [0, 0]);
    assert_eq!(&right.labels[19..], [IGNORE_INDEX, IGNORE_INDEX]);
    assert_eq!(right.lengths, [7, 7, 5]);

    let left = Collator {
        pad_id: 0,
        side: PaddingSide::Left,
    }
    .collate(&enc);
    assert_eq!(&left.attention_mask[14..], [0, 0, 1, 1, 1, 1, 1]);
    assert_eq!(&left.position_ids[14..], [0, 0, 0, 1, 2, 3, 4]);
    assert_eq!(&left.input_ids[16..], &enc[2].input_ids[..]);
}

#[test]
fn length_policies_report_counts() {
    let tok = tokenizer();
    let cfg = |policy| EncodeConfig {
        max_len: Some(4),
        policy,
        ..EncodeConfig::default()
    };
    let (kept, report) = encode_all(&tok, &examples(), &cfg(LengthPolicy::Drop)).unwrap();
    assert_eq!((kept.len(), report.dropped, report.truncated), (1, 2, 0));
    let (right, report) = encode_all(&tok, &examples(), &cfg(LengthPolicy::TruncateRight)).unwrap();
    assert_eq!((report.kept, report.dropped, report.truncated), (3, 0, 2));
    assert!(right.iter().all(|e| e.len() <= 4));
    let (left, _) = encode_all(&tok, &examples(), &cfg(LengthPolicy::TruncateLeft)).unwrap();
    assert_eq!(left[1].input_ids[3], tok.token_to_id("five").unwrap());
}

#[test]
fn shuffle_split_and_epochs_are_deterministic() {
    assert_eq!(shuffled_indices(20, 1), shuffled_indices(20, 1));
    assert_ne!(shuffled_indices(20, 1), shuffled_indices(20, 2));
    let (train, valid) = train_valid_split((0..100).collect::<Vec<_>>(), 0.1, 5).unwrap();
    assert_eq!((train.len(), valid.len()), (90, 10));
    assert_eq!(
        train_valid_split((0..100).collect::<Vec<_>>(), 0.1, 5)
            .unwrap()
            .1,
        valid
    );
    assert!(train_valid_split(vec![1], 1.5, 0).is_err());

    let data: Vec<Encoded> = (0..10u32)
        .map(|i| Encoded {
            input_ids: vec![i + 10; 1 + i as usize % 3],
            labels: vec![1; 1 + i as usize % 3],
        })
        .collect();
    let collator = Collator {
        pad_id: 0,
        side: PaddingSide::Right,
    };
    let batches = Batches::new(&data, 4, collator, 9).unwrap();
    assert_eq!(batches.len(), 3);
    assert_eq!(batches.clone().drop_last().len(), 2);
    let e0: Vec<_> = batches.epoch(0).collect();
    assert_eq!(e0, batches.epoch(0).collect::<Vec<_>>());
    assert_ne!(batches.order(0), batches.order(1));
    let mut seen: Vec<u32> = e0.iter().flat_map(first_tokens).collect();
    seen.sort();
    assert_eq!(seen, (10..20).collect::<Vec<_>>());
    let seq: Vec<_> = batches.clone().sequential().epoch(3).collect();
    assert_eq!(first_tokens(&seq[0]), [10, 11, 12, 13]);
    assert!(Batches::new(&data, 0, collator, 0).is_err());
}

fn first_tokens(b: &latent_datasets::batch::Batch) -> Vec<u32> {
    (0..b.batch_size)
        .map(|r| b.input_ids[r * b.seq_len])
        .collect()
}

#[test]
fn streaming_batches_from_a_file() {
    let path = sample("gsm8k-aug/test_sample.txt");
    let records = icot::load(&path, ReadOptions::strict()).unwrap().records;
    let tok = word_level_tokenizer(records.iter().map(|r| r.question.as_str())).unwrap();
    let config = EncodeConfig::default();
    let encode = |r: latent_datasets::Result<icot::IcotRecord>| {
        let r = r.unwrap();
        let ex = Example::prompt_completion(&r.question, &format!("{} #### {}", r.cot, r.answer));
        latent_datasets::batch::encode(&tok, &ex, &config)
            .unwrap()
            .unwrap()
            .0
    };
    use latent_datasets::LineFormat;
    let collator = Collator {
        pad_id: 0,
        side: PaddingSide::Left,
    };
    let stream = icot::Icot::default()
        .stream(&path, ReadOptions::strict())
        .unwrap()
        .map(encode);
    let batches: Vec<_> = StreamBatches::new(stream, 8, collator, 0, 0).collect();
    assert_eq!(
        batches.iter().map(|b| b.batch_size).collect::<Vec<_>>(),
        [8, 8, 8, 6]
    );
    let shuffled = |seed| {
        let s = icot::Icot::default()
            .stream(&path, ReadOptions::strict())
            .unwrap()
            .map(encode);
        StreamBatches::new(s, 8, collator, 10, seed).collect::<Vec<_>>()
    };
    assert_eq!(shuffled(1), shuffled(1));
    assert_ne!(shuffled(1), batches);
    assert_eq!(shuffled(1).iter().map(|b| b.batch_size).sum::<usize>(), 30);
}
