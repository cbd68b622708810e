//! Property tests: no parser panics on random or mutated input (seeded, reproducible).

use latent_datasets::answer::{hrpo_extract, hrpo_normalize, last_number};
use latent_datasets::data_dir::sample;
use latent_datasets::icot::{Icot, IcotHf};
use latent_datasets::jsonl::{FieldMap, Jsonl};
use latent_datasets::multiplication::Multiplication;
use latent_datasets::qqp::{QqpGlueTsv, QqpJson};
use latent_datasets::rng::SplitMix64;
use latent_datasets::wiki::Wiki;
use latent_datasets::{gsm8k::Gsm8k, GoldAnswer, LineFormat, ReadOptions};

const ALPHABET: &[u8] = b"0123456789 +-*/=.,<>|#()\t\n\r{}[]\":\\abcxyzQ?$%\xc3\xa9";

fn mutate(rng: &mut SplitMix64, line: &[u8]) -> Vec<u8> {
    let mut v = line.to_vec();
    for _ in 0..=rng.below(6) {
        let pos = if v.is_empty() {
            0
        } else {
            rng.below(v.len() as u64 + 1) as usize
        };
        match rng.below(5) {
            0 if pos < v.len() => {
                v.remove(pos);
            }
            1 => v.insert(pos, *rng.choose(ALPHABET).unwrap()),
            2 if pos < v.len() => v[pos] = rng.below(256) as u8,
            3 => {
                let cut = rng.below(v.len() as u64 + 1) as usize;
                v.truncate(cut);
            }
            _ => {
                let len = rng.below(12) as usize;
                let piece: Vec<u8> = (0..len).map(|_| *rng.choose(ALPHABET).unwrap()).collect();
                v.splice(pos.min(v.len())..pos.min(v.len()), piece);
            }
        }
    }
    v
}

fn seeds() -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    for file in [
        "gsm8k/test_sample.jsonl",
        "gsm8k-aug/test_sample.txt",
        "gsm8k-aug/hf_sample.jsonl",
        "mult-4x4/test_sample.txt",
        "qqp/test_sample.jsonl",
        "qqp/glue_sample.tsv",
    ] {
        let text = std::fs::read(sample(file)).unwrap();
        lines.extend(text.split(|&b| b == b'\n').take(6).map(<[u8]>::to_vec));
    }
    lines
}

/// Runs every format over the same text; only checks that nothing panics and that strict errors
/// carry a line number.
fn parse_everything(text: &[u8]) {
    let lossy = String::from_utf8_lossy(text);
    for opts in [ReadOptions::strict(), ReadOptions::lenient()] {
        let _ = Jsonl(Gsm8k).load_reader("f", text, opts);
        let _ = Icot::default().load_reader("f", text, opts);
        let _ = Icot::nl().load_reader("f", text, opts);
        let _ = Jsonl(IcotHf::default()).load_reader("f", text, opts);
        let _ = Multiplication.load_reader("f", text, opts);
        let _ = Jsonl(QqpJson).load_reader("f", text, opts);
        let _ = QqpGlueTsv::default().load_reader("f", text, opts);
        let _ = Wiki::words(2, 5).load_reader("f", text, opts);
        let _ = Jsonl(FieldMap::new().field("a", "/x/0").optional("b", "src"))
            .load_reader("f", text, opts);
    }
    if let Err(e) = Icot::default().load_reader("f", text, ReadOptions::strict()) {
        assert!(e.to_string().starts_with("f:"), "{e}");
    }
    let _ = last_number(&lossy);
    let _ = hrpo_normalize(&lossy);
    let _ = hrpo_extract(&lossy);
    let _ = GoldAnswer::parse(&lossy);
    let _ = GoldAnswer::after_marker(&lossy);
}

#[test]
fn mutated_real_lines_never_panic() {
    let seeds = seeds();
    let mut rng = SplitMix64::new(2024);
    for _ in 0..3000 {
        let base = rng.choose(&seeds).unwrap().clone();
        parse_everything(&mutate(&mut rng, &base));
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = SplitMix64::new(7);
    for _ in 0..3000 {
        let len = rng.below(120) as usize;
        let text: Vec<u8> = (0..len)
            .map(|_| {
                if rng.below(4) == 0 {
                    rng.below(256) as u8
                } else {
                    *rng.choose(ALPHABET).unwrap()
                }
            })
            .collect();
        parse_everything(&text);
    }
}
