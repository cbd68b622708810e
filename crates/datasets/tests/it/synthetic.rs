//! Synthetic generators: deterministic per seed, disjoint held-out splits, and their output loads
//! through the real loaders.

use std::collections::HashSet;

use latent_datasets::icot::Icot;
use latent_datasets::multiplication::{self, Multiplication};
use latent_datasets::synthetic::arithmetic::{ArithmeticConfig, ArithmeticGenerator, Op};
use latent_datasets::synthetic::multiplication::{MultiplicationConfig, MultiplicationGenerator};
use latent_datasets::synthetic::{HeldOut, Split};
use latent_datasets::{LineFormat, ReadOptions};

fn question(line: &str) -> String {
    line.split("||").next().unwrap().to_string()
}

#[test]
fn arithmetic_is_deterministic_per_seed() {
    let g = ArithmeticGenerator::new(ArithmeticConfig::default(), 11).unwrap();
    let a = g.generate(Split::Train, 50);
    assert_eq!(a, g.generate(Split::Train, 50));
    let other = ArithmeticGenerator::new(ArithmeticConfig::default(), 12).unwrap();
    assert_ne!(a, other.generate(Split::Train, 50));
    // Pinned output: a change here changes every experiment that uses the generators.
    assert_eq!(
        a[0],
        "Ravi has 18 balloons. Each of the balloons is swapped for 15 new ones. He gives 11 \
         balloons to a friend. He shares the balloons equally among 7 people, keeping one share. \
         How many balloons does Ravi have now?||<<18*15=270>> <<270-11=259>> <<259/7=37>> #### 37"
    );
    assert_eq!(a.len(), 50);
    let m = MultiplicationGenerator::new(MultiplicationConfig::square(4), 11).unwrap();
    assert_eq!(
        m.generate(Split::Test, 1)[0],
        "6 1 2 9 * 3 6 7 5||8 4 6 7 2 + 0 6 9 2 5 5 ( 8 0 6 0 8 5 ) + 0 0 2 1 5 4 6 \
         ( 8 0 8 1 3 0 7 ) + 0 0 0 0 8 0 6 4 #### 8 0 8 1 1 1 3 5"
    );
}

#[test]
fn arithmetic_lines_load_through_gsm8k_aug_loader() {
    let config = ArithmeticConfig {
        steps: 4,
        operand_min: 1,
        operand_max: 9,
        operators: vec![Op::Add, Op::Mul, Op::Sub],
        ..ArithmeticConfig::default()
    };
    let g = ArithmeticGenerator::new(config, 5).unwrap();
    let text = g.generate(Split::Train, 300).join("\n");
    let loaded = Icot::default()
        .load_str("synthetic", &text, ReadOptions::strict())
        .unwrap();
    assert_eq!(loaded.records.len(), 300);
    for r in &loaded.records {
        let eqs = r.equations().unwrap();
        assert_eq!(eqs.len(), 4);
        for e in &eqs {
            assert!(!e.expr.contains('/'));
            let (x, op, n) = split_expr(&e.expr);
            let y: u64 = e.value.parse().unwrap();
            assert_eq!(
                match op {
                    '+' => x + n,
                    '-' => x - n,
                    '*' => x * n,
                    _ => unreachable!(),
                },
                y
            );
            assert!((1..=9).contains(&n));
        }
        assert_eq!(
            r.gold().unwrap().value,
            eqs[3].value.parse::<f64>().unwrap()
        );
    }
}

fn split_expr(expr: &str) -> (u64, char, u64) {
    let i = expr.find(['+', '-', '*', '/']).unwrap();
    let op = expr[i..].chars().next().unwrap();
    (
        expr[..i].parse().unwrap(),
        op,
        expr[i + 1..].parse().unwrap(),
    )
}

#[test]
fn arithmetic_division_is_exact() {
    let config = ArithmeticConfig {
        operators: vec![Op::Div, Op::Mul],
        ..ArithmeticConfig::default()
    };
    let g = ArithmeticGenerator::new(config, 9).unwrap();
    for r in g.load(Split::Train, 200).unwrap().records {
        for e in r.equations().unwrap() {
            let (x, op, n) = split_expr(&e.expr);
            if op == '/' {
                assert_eq!(x % n, 0);
                assert_eq!(x / n, e.value.parse::<u64>().unwrap());
            }
        }
    }
}

#[test]
fn held_out_splits_are_disjoint() {
    let g = ArithmeticGenerator::new(ArithmeticConfig::default(), 1).unwrap();
    let train: HashSet<String> = g
        .generate(Split::Train, 2000)
        .iter()
        .map(|l| question(l))
        .collect();
    let test: Vec<String> = g
        .generate(Split::Test, 200)
        .iter()
        .map(|l| question(l))
        .collect();
    let valid: Vec<String> = g
        .generate(Split::Valid, 200)
        .iter()
        .map(|l| question(l))
        .collect();
    assert_eq!(test.len(), 200);
    assert_eq!(
        test.iter().collect::<HashSet<_>>().len(),
        200,
        "test is unique"
    );
    assert!(test.iter().all(|q| !train.contains(q)));
    assert!(valid
        .iter()
        .all(|q| !train.contains(q) && !test.contains(q)));
    let held = HeldOut::default();
    assert!(test.iter().all(|q| held.split_of(q) == Split::Test));
}

#[test]
fn multiplication_matches_real_format_and_loads() {
    let g = MultiplicationGenerator::new(MultiplicationConfig::square(4), 3).unwrap();
    let lines = g.generate(Split::Train, 100);
    assert_eq!(lines, g.generate(Split::Train, 100));
    let loaded = Multiplication
        .load_str("synthetic", &lines.join("\n"), ReadOptions::strict())
        .unwrap();
    for (r, line) in loaded.records.iter().zip(&lines) {
        assert_eq!((r.a.len(), r.b.len(), r.answer.len()), (4, 4, 8));
        assert_ne!(*r.a.last().unwrap(), 0);
        assert!(r.answer_is_correct() && r.cot_is_canonical());
        assert_eq!(&r.to_line(), line);
        assert_eq!(multiplication::line_for(&r.a, &r.b), *line);
    }
    let test = g.generate(Split::Test, 100);
    let train: HashSet<String> = g
        .generate(Split::Train, 3000)
        .iter()
        .map(|l| question(l))
        .collect();
    assert!(test.iter().all(|l| !train.contains(&question(l))));
    for k in [1, 2, 7] {
        let g = MultiplicationGenerator::new(MultiplicationConfig::square(k), 0).unwrap();
        for r in g.load(Split::Valid, 20).unwrap().records {
            assert!(r.answer_is_correct() && r.cot_is_canonical());
        }
    }
}

#[test]
fn tiny_problem_space_ends_instead_of_looping() {
    let g = MultiplicationGenerator::new(MultiplicationConfig::square(1), 0).unwrap();
    // 81 questions in all; roughly 5% are test questions.
    let test = g.generate(Split::Test, 1000);
    assert!(test.len() < 81);
}
