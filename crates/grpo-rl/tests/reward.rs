//! HRPO's GSM8K reward on GSM8K's real answer lines: the shipped sample (and the full train split
//! when `LATENT_DATA_DIR` holds it).

use grpo_rl::reward::answer_correct;
use grpo_rl::{Gsm8kReward, Reward};
use latent_datasets::data_dir::{full_file, sample, skip_message};
use latent_datasets::gsm8k::{load, Gsm8kRecord};
use latent_datasets::reader::ReadOptions;

/// Every solution is rewarded against its own gold answer; a wrong answer, a second `####` or a
/// missing one is not.
fn check(records: &[Gsm8kRecord]) {
    assert!(!records.is_empty());
    let reward = Gsm8kReward;
    for r in records {
        let gold = &r.answer.text;
        assert_eq!(reward.score(&r.solution, gold), 1.0, "{}", r.solution);
        let body = r.solution.rsplit_once("####").unwrap().0;
        assert_eq!(reward.score(body, gold), 0.0, "no marker");
        let wrong = format!("{body}#### {}", r.answer.value + 1.0);
        assert_eq!(reward.score(&wrong, gold), 0.0, "wrong answer");
        let twice = format!("{body}#### {gold} #### {gold}");
        assert_eq!(reward.score(&twice, gold), 0.0, "two markers");
        assert!(
            answer_correct(&twice, gold),
            "evaluation does not count markers"
        );
        let dressed = format!("{body}#### ${gold}.");
        assert_eq!(reward.score(&dressed, gold), 1.0, "{dressed}");
    }
}

#[test]
fn gsm8k_solutions_earn_their_reward() {
    let path = sample("gsm8k/test_sample.jsonl");
    let records = load(&path, ReadOptions::strict()).unwrap().into_records();
    check(&records);
    // Thousands separators: GSM8K writes some answers with commas; HRPO's regex read "1,000" as 0.
    let reward = Gsm8kReward;
    assert_eq!(reward.score("so #### 1,000", "1000"), 1.0);
    assert_eq!(reward.score("so #### 1,000", "0"), 0.0);
    assert_eq!(reward.score("#### 2.50", "2.5"), 1.0);
    assert_eq!(reward.score("#### 5/2", "2.5"), 1.0);
}

#[test]
fn the_full_train_split_earns_its_reward() {
    let Some(path) = full_file("gsm8k/train.jsonl").filter(|p| p.exists()) else {
        eprintln!("{}", skip_message("gsm8k/train.jsonl"));
        return;
    };
    let records = load(&path, ReadOptions::strict()).unwrap().into_records();
    assert_eq!(records.len(), 7473);
    check(&records);
}
