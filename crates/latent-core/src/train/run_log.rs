//! What a training run writes next to its checkpoints: `metrics.jsonl` (one line per update: step,
//! epoch, loss, each loss term, lr per group, grad norm, throughput), `training.log` (the same as
//! text; a term named `ns/x` is written under its own name, others as `loss/x`),
//! `training_stats.json` and `loss.png` at the end (total updates, per-epoch mean loss, best
//! metric, wall time; the loss curve), and, when asked for, progress: a bar with loss, lr and
//! throughput on a terminal, plain lines on stderr otherwise ([`super::progress_lines`]).

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use super::best::BestMetric;
use super::plot::{Plot, Series, Style, YScale};
use super::progress_lines::{ProgressLines, ProgressMode, ProgressState};
use super::trainer::UpdateRecord;
use crate::{CoreError, Result};

/// Writes the logs of one run into a directory.
#[derive(Debug)]
pub struct RunLog {
    dir: PathBuf,
    metrics: File,
    text: File,
    progress: ProgressBar,
    /// Plain progress lines on stderr (progress asked for, stderr not a terminal).
    lines: Option<ProgressLines>,
    /// Updates done when the logs were opened (a resumed run's earlier ones).
    opened_at: usize,
    start: Instant,
    last: Instant,
    epoch_losses: Vec<(f64, usize)>,
    updates: usize,
    /// `(step, loss)` of every update.
    loss_curve: Vec<(f64, f64)>,
    /// The key of the first evaluated metric and its `(step, value)` points.
    metric_curve: Option<(String, Vec<(f64, f64)>)>,
    /// What `loss.png` is titled with (the method) and its y axis label.
    loss_plot: (String, String),
    /// Terms shown in the progress message besides the loss.
    shown: Vec<String>,
}

/// The `metrics.jsonl` key of a loss term: `loss/<name>`, or the name itself when it already has a
/// namespace (`reward/mean`).
fn term_key(name: &str) -> String {
    if name.contains('/') {
        name.to_string()
    } else {
        format!("loss/{name}")
    }
}

fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| CoreError::io(path, e))
}

impl RunLog {
    /// Opens (appending, so a resumed run continues its logs) the logs in `dir` for a run of
    /// `total_updates` updates, `done` of which already happened.
    pub fn open(
        dir: impl AsRef<Path>,
        total_updates: usize,
        done: usize,
        show_progress: bool,
    ) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| CoreError::io(&dir, e))?;
        let mode = ProgressMode::choose(show_progress, std::io::stderr().is_terminal());
        let progress = if mode == ProgressMode::Bar {
            ProgressBar::new(total_updates as u64)
        } else {
            ProgressBar::hidden()
        };
        progress.set_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} updates [{elapsed_precise}<{eta_precise}] {msg}",
            )
            .expect("valid template"),
        );
        progress.set_position(done as u64);
        Ok(Self {
            metrics: open_append(&dir.join("metrics.jsonl"))?,
            text: open_append(&dir.join("training.log"))?,
            dir,
            progress,
            lines: (mode == ProgressMode::Lines).then(|| ProgressLines::new(total_updates)),
            opened_at: done,
            start: Instant::now(),
            last: Instant::now(),
            epoch_losses: Vec::new(),
            updates: done,
            loss_curve: Vec::new(),
            metric_curve: None,
            loss_plot: (String::new(), "loss".into()),
            shown: Vec::new(),
        })
    }

    /// Names what `loss.png` shows: the method (`CODI`, put in the title before the run directory's
    /// name) and the y axis label with the loss's unit (`loss (nats)`); without it the title names
    /// the run only and the axis reads `loss`.
    pub fn describe_loss(&mut self, method: &str, y_label: &str) {
        self.loss_plot = (method.to_string(), y_label.to_string());
    }

    /// Also show these terms of each update in the progress message (e.g. `reward/mean`, `kl`).
    pub fn show_terms(&mut self, names: &[&str]) {
        self.shown = names.iter().map(|n| n.to_string()).collect();
    }

    /// Records one update; `tokens` is the number of tokens it processed (for throughput).
    pub fn update(&mut self, record: &UpdateRecord, tokens: usize) -> Result<()> {
        let seconds = self.last.elapsed().as_secs_f64().max(1e-9);
        self.last = Instant::now();
        let tokens_per_s = tokens as f64 / seconds;
        let mut line = json!({
            "step": record.update + 1,
            "epoch": record.epoch,
            "loss": record.loss,
            "grad_norm": record.grad_norm,
            "tokens_per_s": tokens_per_s,
            "elapsed_s": self.start.elapsed().as_secs_f64(),
        });
        let map = line.as_object_mut().expect("object");
        for (name, value) in &record.terms {
            map.insert(term_key(name), json!(value));
        }
        for (group, lr) in &record.lrs {
            map.insert(format!("lr/{group}"), json!(lr));
        }
        self.write_line(&line)?;
        if self.epoch_losses.len() <= record.epoch {
            self.epoch_losses.resize(record.epoch + 1, (0.0, 0));
        }
        let (sum, n) = &mut self.epoch_losses[record.epoch];
        *sum += record.loss;
        *n += 1;
        self.updates = record.update + 1;
        self.loss_curve.push((self.updates as f64, record.loss));
        let lr = record.lrs.first().map(|(_, lr)| *lr).unwrap_or(0.0);
        self.progress.set_position(self.updates as u64);
        let shown: String = self
            .shown
            .iter()
            .filter_map(|name| {
                let (_, v) = record.terms.iter().find(|(n, _)| n == name)?;
                Some(format!(" {name} {v:.4}"))
            })
            .collect();
        self.progress.set_message(format!(
            "loss {:.4}{shown} lr {lr:.2e} {tokens_per_s:.0} tok/s",
            record.loss
        ));
        if let Some(lines) = &self.lines {
            let state = ProgressState {
                epoch: record.epoch,
                done: self.updates,
                done_here: self.updates.saturating_sub(self.opened_at),
                loss: record.loss,
                terms: &shown,
                lr,
                tokens_per_s,
                elapsed: self.start.elapsed(),
            };
            if let Some(line) = lines.line(&state) {
                eprintln!("{line}");
            }
        }
        Ok(())
    }

    /// Records an evaluation (e.g. `{"valid/loss": 1.2}`) in both logs.
    pub fn metrics(&mut self, step: usize, values: &[(String, f64)]) -> Result<()> {
        if let Some((key, v)) = values.first() {
            let (_, points) = self
                .metric_curve
                .get_or_insert_with(|| (key.clone(), Vec::new()));
            points.push((step as f64, *v));
        }
        let mut line = json!({ "step": step });
        let map = line.as_object_mut().expect("object");
        for (k, v) in values {
            map.insert(k.clone(), json!(v));
        }
        self.write_line(&line)
    }

    /// A free-form line in `training.log` (also shown above the progress bar, or on stderr among
    /// the progress lines).
    pub fn note(&mut self, text: &str) -> Result<()> {
        if self.lines.is_some() {
            eprintln!("{text}");
        } else {
            self.progress.println(text);
        }
        let path = self.dir.join("training.log");
        writeln!(self.text, "{text}").map_err(|e| CoreError::io(&path, e))
    }

    fn write_line(&mut self, line: &Value) -> Result<()> {
        let path = self.dir.join("metrics.jsonl");
        writeln!(self.metrics, "{line}").map_err(|e| CoreError::io(&path, e))?;
        let log = self.dir.join("training.log");
        writeln!(self.text, "{line}").map_err(|e| CoreError::io(&log, e))
    }

    /// Writes `training_stats.json` and `loss.png` (training loss, and the first evaluated metric),
    /// and closes the progress bar.
    pub fn finish(&mut self, best: Option<&BestMetric>) -> Result<Value> {
        self.progress.finish();
        let per_epoch: Vec<Value> = self
            .epoch_losses
            .iter()
            .map(|(sum, n)| {
                if *n > 0 {
                    json!(sum / *n as f64)
                } else {
                    Value::Null
                }
            })
            .collect();
        let stats = json!({
            "total_updates": self.updates,
            "per_epoch_loss": per_epoch,
            "best_metric": best.map(|b| json!({"key": b.key, "value": b.value, "direction": b.direction})),
            "wall_time_s": self.start.elapsed().as_secs_f64(),
        });
        let path = self.dir.join("training_stats.json");
        let text = serde_json::to_string_pretty(&stats).map_err(|e| CoreError::json(&path, &e))?;
        crate::atomic::write_atomic(&path, text.as_bytes())?;
        if !self.loss_curve.is_empty() {
            self.loss_plot().save(&self.dir.join("loss.png"))?;
        }
        Ok(stats)
    }

    /// `loss.png`: the per-update loss (faint, with its moving average) and the first evaluated
    /// metric, against optimizer updates, on a log axis when the loss spans more than a decade.
    fn loss_plot(&self) -> Plot {
        let run = self.dir.file_name().map_or_else(
            || self.dir.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        let (method, y_label) = &self.loss_plot;
        let title = if method.is_empty() {
            format!("training loss, run {run}")
        } else {
            format!("{method} training loss, run {run}")
        };
        let mut plot = Plot::new(title, "optimizer update", y_label.as_str())
            .y_scale(YScale::Auto)
            .with(Series::new(
                "training loss",
                self.loss_curve.clone(),
                Style::Smoothed,
            ));
        if let Some((key, points)) = &self.metric_curve {
            plot = plot.with(Series::new(
                key.as_str(),
                points.clone(),
                Style::LineMarkers,
            ));
        }
        plot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(update: usize, loss: f64) -> UpdateRecord {
        UpdateRecord {
            update,
            epoch: 0,
            micro_batches: 1,
            loss,
            grad_norm: 1.0,
            lrs: vec![("all".into(), 1e-3)],
            terms: Vec::new(),
            loss_scale: None,
            skipped: false,
        }
    }

    #[test]
    fn loss_png_names_the_run_the_loss_and_the_metric() {
        let dir =
            std::env::temp_dir().join(format!("latent-core-runlog-plot-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        let mut log = RunLog::open(&dir, 3, 0, false).unwrap();
        log.describe_loss("CODI", "loss (nats)");
        for (u, loss) in [4.0, 2.0, 0.3].into_iter().enumerate() {
            log.update(&record(u, loss), 10).unwrap();
            if u > 0 {
                let metrics = [
                    ("valid/loss".into(), 1.0 / u as f64),
                    ("valid/acc".into(), 0.1),
                ];
                log.metrics(u + 1, &metrics).unwrap();
            }
        }
        let plot = log.loss_plot();
        let run = dir.file_name().unwrap().to_string_lossy();
        assert_eq!(plot.title, format!("CODI training loss, run {run}"));
        assert_eq!(
            (plot.x_label.as_str(), plot.y_label.as_str()),
            ("optimizer update", "loss (nats)")
        );
        assert_eq!(plot.y_scale, YScale::Auto);
        assert_eq!(
            plot.series,
            vec![
                Series::new(
                    "training loss",
                    vec![(1.0, 4.0), (2.0, 2.0), (3.0, 0.3)],
                    Style::Smoothed
                ),
                Series::new(
                    "valid/loss",
                    vec![(2.0, 1.0), (3.0, 0.5)],
                    Style::LineMarkers
                ),
            ]
        );
        log.finish(None).unwrap();
        assert!(dir.join("loss.png").is_file());
        std::fs::remove_dir_all(&dir).ok();
    }
}
