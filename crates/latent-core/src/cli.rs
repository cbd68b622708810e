//! The command-line convention every job of the workspace follows (`latent <group> <job>` and the
//! examples that wrap it): the common flags ([`CommonArgs`], flattened into each job's arguments),
//! the check that a job was given only the common flags it uses ([`CommonArgs::accept`]), the
//! override that `--output-dir` and `--device` become ([`CommonArgs::overrides`]), `--resume`
//! without a directory ([`newest_checkpoint`]), and the one way a failed job is reported
//! ([`exit_on_error`]: `error: <message>` on stderr, exit status 1).

use std::fmt::Display;
use std::path::{Path, PathBuf};

use crate::train::CheckpointPolicy;

/// What a job returns: its output is printed as it runs; an error is reported by [`exit_on_error`].
pub type JobResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// The flags every job accepts (a job rejects, with [`CliError::Unsupported`], those that do not
/// apply to it).
#[derive(clap::Args, Debug, Clone, Default, PartialEq)]
pub struct CommonArgs {
    /// The job's config file (YAML or JSON; see the job's description for which).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Overrides a config key, `dotted.key=value` (repeatable; the value is read as YAML).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Print the resolved config, parameter counts per group and steps per epoch (or the inputs of
    /// a job that does not train), then exit without training.
    #[arg(long)]
    pub dry_run: bool,
    /// Resume from checkpoint DIR; alone, from the newest checkpoint in the output directory.
    #[arg(long, value_name = "DIR", num_args = 0..=1)]
    pub resume: Option<Option<PathBuf>>,
    /// Device: `cpu`, `cuda` or `cuda:N` (builds with `--features cuda`).
    #[arg(long, value_name = "cpu|cuda[:N]")]
    pub device: Option<String>,
    /// Data-parallel replicas, one per device (`cpu,cpu`, `cuda:0,cuda:1`), where a job trains.
    #[arg(long, value_name = "LIST")]
    pub devices: Option<String>,
    /// Where the job writes (overrides the config's output directory key).
    #[arg(long, visible_alias = "output_dir", value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Hide progress bars and progress lines.
    #[arg(long)]
    pub quiet: bool,
}

/// The arguments of a job that trains from a run config, then evaluates (`latent codi train`,
/// `latent hrpo train`): every common flag, `--config` required.
#[derive(clap::Args, Debug, Clone, Default, PartialEq)]
pub struct TrainEvalArgs {
    /// The common flags (`--config` is required).
    #[command(flatten)]
    pub common: CommonArgs,
    /// Skip the evaluation after training.
    #[arg(long)]
    pub no_eval: bool,
}

/// How such a job runs beside its config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrainSettings {
    /// Resume from the newest checkpoint in the output directory.
    pub resume: bool,
    /// Hide the progress bar.
    pub quiet: bool,
    /// Skip the evaluation after training.
    pub no_eval: bool,
}

impl TrainEvalArgs {
    /// The settings of `job`, whose config's output directory is `output_dir`.
    pub fn settings(&self, job: &str, output_dir: &Path) -> crate::Result<TrainSettings> {
        Ok(TrainSettings {
            resume: self.common.resume_latest(job, output_dir)?,
            quiet: self.common.quiet,
            no_eval: self.no_eval,
        })
    }
}

/// One of the common flags, to name those a job uses in [`CommonArgs::accept`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// `--config`.
    Config,
    /// `--set`.
    Set,
    /// `--dry-run`.
    DryRun,
    /// `--resume`.
    Resume,
    /// `--device`.
    Device,
    /// `--devices`.
    Devices,
    /// `--output-dir`.
    OutputDir,
    /// `--quiet`.
    Quiet,
}

impl Flag {
    /// Every common flag.
    pub const ALL: [Flag; 8] = [
        Flag::Config,
        Flag::Set,
        Flag::DryRun,
        Flag::Resume,
        Flag::Device,
        Flag::Devices,
        Flag::OutputDir,
        Flag::Quiet,
    ];

    /// What a job that evaluates a saved model with its run config uses: all but `--resume` and
    /// `--devices`.
    pub const EVALUATE: [Flag; 6] = [
        Flag::Config,
        Flag::Set,
        Flag::DryRun,
        Flag::Device,
        Flag::OutputDir,
        Flag::Quiet,
    ];

    /// The flag as typed.
    pub fn name(self) -> &'static str {
        match self {
            Flag::Config => "--config",
            Flag::Set => "--set",
            Flag::DryRun => "--dry-run",
            Flag::Resume => "--resume",
            Flag::Device => "--device",
            Flag::Devices => "--devices",
            Flag::OutputDir => "--output-dir",
            Flag::Quiet => "--quiet",
        }
    }
}

/// A job's command line does not fit the job.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CliError {
    /// A common flag the job does not use.
    #[error("`{job}` does not take {flag}")]
    Unsupported {
        /// The job, e.g. `latent lm forward`.
        job: String,
        /// The flag, e.g. `--resume`.
        flag: &'static str,
    },
    /// A flag the job needs is missing.
    #[error("`{job}` needs {flag}")]
    Missing {
        /// The job.
        job: String,
        /// The flag.
        flag: &'static str,
    },
    /// A flag's value does not fit the job.
    #[error("`{job}`: {flag}: {reason}")]
    Invalid {
        /// The job.
        job: String,
        /// The flag.
        flag: &'static str,
        /// Why.
        reason: String,
    },
    /// Bare `--resume`, and the output directory holds no checkpoint.
    #[error("--resume: no checkpoint (checkpoint-N or epoch_K) in {0}")]
    NoCheckpoint(PathBuf),
}

impl CommonArgs {
    /// Whether `flag` was given.
    pub fn has(&self, flag: Flag) -> bool {
        match flag {
            Flag::Config => self.config.is_some(),
            Flag::Set => !self.overrides.is_empty(),
            Flag::DryRun => self.dry_run,
            Flag::Resume => self.resume.is_some(),
            Flag::Device => self.device.is_some(),
            Flag::Devices => self.devices.is_some(),
            Flag::OutputDir => self.output_dir.is_some(),
            Flag::Quiet => self.quiet,
        }
    }

    /// Rejects the common flags given that `job` does not list in `uses`.
    pub fn accept(&self, job: &str, uses: &[Flag]) -> Result<(), CliError> {
        match Flag::ALL
            .into_iter()
            .find(|f| self.has(*f) && !uses.contains(f))
        {
            Some(flag) => Err(CliError::Unsupported {
                job: job.into(),
                flag: flag.name(),
            }),
            None => Ok(()),
        }
    }

    /// The `--config` file, which `job` needs.
    pub fn config(&self, job: &str) -> Result<&Path, CliError> {
        self.config.as_deref().ok_or_else(|| CliError::Missing {
            job: job.into(),
            flag: "--config",
        })
    }

    /// The `--set` overrides followed by those `--device` and `--output-dir` stand for: `device_key`
    /// and `output_key` are the config's keys (e.g. `training.device`, `training.output_dir`;
    /// `None` where the config has none).
    pub fn overrides(&self, device_key: Option<&str>, output_key: &str) -> Vec<String> {
        let mut all = self.overrides.clone();
        if let (Some(key), Some(device)) = (device_key, &self.device) {
            all.push(format!("{key}={}", yaml_string(device)));
        }
        if let Some(dir) = &self.output_dir {
            all.push(format!(
                "{output_key}={}",
                yaml_string(&dir.to_string_lossy())
            ));
        }
        all
    }

    /// A job's own output flag (`own`, spelled `own_flag`), else `--output-dir`; one is needed.
    pub fn output(
        &self,
        job: &str,
        own: Option<&Path>,
        own_flag: &'static str,
    ) -> Result<PathBuf, CliError> {
        own.or(self.output_dir.as_deref())
            .map(Path::to_path_buf)
            .ok_or_else(|| CliError::Missing {
                job: job.into(),
                flag: own_flag,
            })
    }

    /// `--device` for a job on one device (default `cpu`).
    pub fn device_spec(&self) -> crate::Result<crate::DeviceSpec> {
        self.device.as_deref().unwrap_or("cpu").parse()
    }

    /// The start of a job on one device that takes no config: rejects the common flags it does not
    /// list in `uses`, parses `--device` (default cpu) and, with `--dry-run`, prints the job's
    /// `inputs` and returns `None` (the job then stops).
    pub fn start_on_device(
        &self,
        job: &str,
        uses: &[Flag],
        inputs: &impl std::fmt::Debug,
    ) -> crate::Result<Option<crate::DeviceSpec>> {
        self.accept(job, uses)?;
        let device = self.device_spec()?;
        if self.dry_run {
            println!("{inputs:#?}");
            return Ok(None);
        }
        Ok(Some(device))
    }

    /// A job with embedded settings (the CPU demos): takes `--output-dir` (already in
    /// `settings`), `--quiet` and `--dry-run`, which prints `settings` as JSON; otherwise runs
    /// `run(settings, progress)`.
    pub fn run_settings<T: serde::Serialize>(
        &self,
        job: &str,
        settings: &T,
        run: impl FnOnce(&T, bool) -> JobResult,
    ) -> JobResult {
        self.accept(job, &[Flag::OutputDir, Flag::Quiet, Flag::DryRun])?;
        if self.dry_run {
            println!("{}", serde_json::to_string_pretty(settings)?);
            return Ok(());
        }
        run(settings, !self.quiet)
    }

    /// `--devices`, else `--device`, else `default` (a config's device key).
    pub fn device_list<'a>(&'a self, default: &'a str) -> &'a str {
        self.devices
            .as_deref()
            .or(self.device.as_deref())
            .unwrap_or(default)
    }

    /// The checkpoint `--resume` names: its directory, or with bare `--resume` the newest one in
    /// `output_dir`; `None` without `--resume`.
    pub fn resume_dir(&self, output_dir: &Path) -> crate::Result<Option<PathBuf>> {
        match &self.resume {
            None => Ok(None),
            Some(Some(dir)) => Ok(Some(dir.clone())),
            Some(None) => newest_checkpoint(output_dir).map(Some),
        }
    }

    /// For jobs that resume only from their own output directory: `--resume` alone is `true`,
    /// `--resume DIR` is accepted when DIR is that directory or its newest checkpoint.
    pub fn resume_latest(&self, job: &str, output_dir: &Path) -> crate::Result<bool> {
        match &self.resume {
            None | Some(None) => Ok(self.resume.is_some()),
            Some(Some(dir)) if dir == output_dir => Ok(true),
            Some(Some(dir)) if Some(dir) == newest_checkpoint(output_dir).ok().as_ref() => Ok(true),
            Some(Some(dir)) => Err(crate::CoreError::Cli(CliError::Invalid {
                job: job.into(),
                flag: "--resume",
                reason: format!(
                    "{} is not the newest checkpoint in the output directory {}; this job resumes from that one only (give --resume alone)",
                    dir.display(),
                    output_dir.display()
                ),
            })),
        }
    }
}

/// A YAML single-quoted scalar: an override's value stays a string (`007`, `true` as paths).
fn yaml_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The newest checkpoint (`checkpoint-N` or `epoch_K`, by global step) in a run's output directory.
pub fn newest_checkpoint(output_dir: &Path) -> crate::Result<PathBuf> {
    let policy = CheckpointPolicy {
        dir: output_dir.into(),
        every_updates: 0,
        keep_last: 0,
        per_epoch: false,
    };
    policy
        .latest()?
        .ok_or_else(|| CliError::NoCheckpoint(output_dir.into()).into())
}

/// Prints a demo's table and its wall time, naming the `results.md` it wrote.
pub fn print_table(markdown: &str, seconds: f64, results: &Path) {
    println!("{markdown}");
    println!(
        "total wall time: {seconds:.0} s; results in {}",
        results.display()
    );
}

/// Runs a job's result out: on an error prints `error: <message>` on stderr and exits with status 1
/// (the same for every job).
pub fn exit_on_error<E: Display>(result: std::result::Result<(), E>) {
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Job {
        #[command(flatten)]
        common: CommonArgs,
    }

    fn parse(args: &[&str]) -> CommonArgs {
        Job::try_parse_from(std::iter::once("job").chain(args.iter().copied()))
            .unwrap()
            .common
    }

    #[test]
    fn resume_takes_an_optional_directory() {
        assert_eq!(parse(&[]).resume, None);
        assert_eq!(parse(&["--resume"]).resume, Some(None));
        assert_eq!(
            parse(&["--resume", "runs/x/checkpoint-3"]).resume,
            Some(Some("runs/x/checkpoint-3".into()))
        );
    }

    #[test]
    fn output_dir_and_device_become_overrides() {
        let args = parse(&[
            "--set",
            "a.b=1",
            "--output-dir",
            "runs/it's",
            "--device",
            "cuda:1",
        ]);
        assert_eq!(
            args.overrides(Some("training.device"), "training.output_dir"),
            [
                "a.b=1",
                "training.device='cuda:1'",
                "training.output_dir='runs/it''s'"
            ]
        );
        assert_eq!(args.overrides(None, "out"), ["a.b=1", "out='runs/it''s'"]);
    }

    #[test]
    fn unused_flags_are_rejected_by_name() {
        let args = parse(&["--resume", "--quiet"]);
        assert!(args
            .accept("latent x y", &[Flag::Resume, Flag::Quiet])
            .is_ok());
        assert_eq!(
            args.accept("latent x y", &[Flag::Quiet])
                .unwrap_err()
                .to_string(),
            "`latent x y` does not take --resume"
        );
    }
}
