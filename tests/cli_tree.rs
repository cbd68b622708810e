//! The `latent` command tree: clap's own consistency checks, every job takes the common flags
//! under their common names, says what it does and where it writes, and every example runs a job
//! of the tree.

use std::path::PathBuf;

use clap::{ArgMatches, Command, CommandFactory, FromArgMatches};
use latent_reasoning::cli::Cli;
use latent_reasoning::core::cli::CommonArgs;

/// The common flags with a value each: (argument id, flag, value).
const COMMON: [(&str, &str, Option<&str>); 8] = [
    ("config", "--config", Some("run.yaml")),
    ("overrides", "--set", Some("a.b=1")),
    ("dry_run", "--dry-run", None),
    ("resume", "--resume", Some("runs/x/checkpoint-2")),
    ("device", "--device", Some("cuda:1")),
    ("devices", "--devices", Some("cpu,cpu")),
    ("output_dir", "--output-dir", Some("runs/elsewhere")),
    ("quiet", "--quiet", None),
];

/// Every job: its path under `latent` and its command.
fn jobs() -> Vec<(Vec<String>, Command)> {
    fn walk(path: Vec<String>, cmd: &Command, out: &mut Vec<(Vec<String>, Command)>) {
        if !cmd.has_subcommands() {
            out.push((path, cmd.clone()));
            return;
        }
        for sub in cmd.get_subcommands() {
            let mut p = path.clone();
            p.push(sub.get_name().to_string());
            walk(p, sub, out);
        }
    }
    let mut out = Vec::new();
    walk(Vec::new(), &Cli::command(), &mut out);
    out
}

/// A value for each argument `cmd` requires beyond the common flags.
fn required(cmd: &Command) -> Vec<String> {
    cmd.get_arguments()
        .filter(|a| a.is_required_set() && a.get_long().is_some())
        .flat_map(|a| {
            let value = a
                .get_possible_values()
                .first()
                .map_or("1".to_string(), |v| v.get_name().to_string());
            [format!("--{}", a.get_long().unwrap()), value]
        })
        .collect()
}

fn leaf<'a>(mut m: &'a ArgMatches, path: &[String]) -> &'a ArgMatches {
    for name in path {
        m = m.subcommand_matches(name).expect("subcommand");
    }
    m
}

#[test]
fn the_tree_passes_clap_checks() {
    Cli::command().debug_assert();
    assert!(jobs().len() >= 25, "{} jobs", jobs().len());
}

#[test]
fn every_job_parses_the_common_flags() {
    for (path, cmd) in jobs() {
        let mut argv: Vec<String> = vec!["latent".into()];
        argv.extend(path.iter().cloned());
        for (_, flag, value) in COMMON {
            argv.push(flag.into());
            argv.extend(value.map(String::from));
        }
        argv.extend(required(&cmd));
        let matches = Cli::command()
            .try_get_matches_from(&argv)
            .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        let expected = CommonArgs {
            config: Some("run.yaml".into()),
            overrides: vec!["a.b=1".into()],
            dry_run: true,
            resume: Some(Some("runs/x/checkpoint-2".into())),
            device: Some("cuda:1".into()),
            devices: Some("cpu,cpu".into()),
            output_dir: Some("runs/elsewhere".into()),
            quiet: true,
        };
        let common = |m: &ArgMatches| {
            CommonArgs::from_arg_matches(leaf(m, &path)).unwrap_or_else(|e| panic!("{path:?}: {e}"))
        };
        assert_eq!(common(&matches), expected, "{path:?}");
        // The derive reads the same matches back.
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        // `--resume` alone (last, so that it takes no value).
        let mut bare: Vec<String> = argv
            .iter()
            .filter(|a| *a != "--resume" && *a != "runs/x/checkpoint-2")
            .cloned()
            .collect();
        bare.push("--resume".into());
        let matches = Cli::command()
            .try_get_matches_from(&bare)
            .unwrap_or_else(|e| panic!("{bare:?}: {e}"));
        assert_eq!(common(&matches).resume, Some(None), "{path:?}");
    }
}

#[test]
fn every_job_says_what_it_does_and_where_it_writes() {
    for (path, cmd) in jobs() {
        let about = cmd.get_about().map(|s| s.to_string()).unwrap_or_default();
        let long = cmd
            .get_long_about()
            .map(|s| s.to_string())
            .unwrap_or_default();
        assert!(!about.is_empty(), "{path:?} has no description");
        assert!(
            long.contains("writ") || long.contains("prints") || long.contains("Prints"),
            "{path:?}: the long description does not say what it writes: {long}"
        );
    }
}

#[test]
fn every_example_runs_a_job_of_the_tree() {
    let names: Vec<Vec<String>> = jobs().into_iter().map(|(p, _)| p).collect();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let call = text
            .split("main_as(&[")
            .nth(1)
            .and_then(|t| t.split("])").next())
            .unwrap_or_else(|| panic!("{} does not call cli::main_as", path.display()));
        let job: Vec<String> = call
            .split(',')
            .map(|s| s.trim().trim_matches('"').to_string())
            .collect();
        assert!(names.contains(&job), "{}: {job:?}", path.display());
        seen += 1;
    }
    assert!(seen >= 25, "{seen} examples");
}
