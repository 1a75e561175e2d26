//! The snapshot's progress while `sluice run` reads tables: on a terminal, a
//! bar per table (rows, rows/s, ETA), the log printed above the bars;
//! otherwise a log line per table every few seconds and when it is done.
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;

use crate::telemetry::{TableProgress, Telemetry};

/// The bars on screen, which log lines must be written above.
static BARS: RwLock<Option<MultiProgress>> = RwLock::new(None);

/// How often a progress line is logged per table when not on a terminal.
const LOG_EVERY: Duration = Duration::from_secs(5);

pub struct SnapshotDisplay {
    task: JoinHandle<()>,
}

impl SnapshotDisplay {
    pub fn start(telemetry: Arc<Telemetry>) -> Self {
        let task = if std::io::stderr().is_terminal() {
            let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            *BARS.write().expect("bars lock") = Some(bars.clone());
            tokio::spawn(draw(telemetry, bars))
        } else {
            tokio::spawn(log(telemetry))
        };
        SnapshotDisplay { task }
    }
}

impl Drop for SnapshotDisplay {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(bars) = BARS.write().expect("bars lock").take() {
            let _ = bars.clear();
        }
    }
}

/// Each table a pipeline's snapshot reads, once: `(pipeline, table)`.
fn tables(telemetry: &Telemetry) -> Vec<(String, Arc<TableProgress>)> {
    telemetry
        .pipelines()
        .iter()
        .flat_map(|p| {
            let name = p.status().name.clone();
            p.status().snapshot_tables().into_iter().map(move |t| (name.clone(), t))
        })
        .collect()
}

async fn draw(telemetry: Arc<Telemetry>, bars: MultiProgress) {
    let style = ProgressStyle::with_template("{prefix:.bold} [{bar:30.cyan/blue}] {human_pos}/~{human_len} rows  {per_sec}  ETA {eta}")
        .expect("a valid template")
        .progress_chars("=> ");
    let mut shown: HashMap<(String, String), (ProgressBar, Arc<TableProgress>)> = HashMap::new();
    loop {
        for (pipeline, table) in tables(&telemetry) {
            let key = (pipeline.clone(), table.table.clone());
            let (bar, known) = shown.entry(key).or_insert_with(|| {
                let bar = bars.add(ProgressBar::new(table.estimated()).with_style(style.clone()));
                bar.set_prefix(format!("{pipeline} {}", table.table));
                (bar, table.clone())
            });
            if !Arc::ptr_eq(known, &table) {
                // The table is read again (a restarted run): its bar starts over.
                bar.reset();
                *known = table.clone();
            }
            if bar.is_finished() {
                continue;
            }
            bar.set_length(table.estimated());
            bar.set_position(table.rows());
            if table.is_finished() {
                bar.finish();
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn log(telemetry: Arc<Telemetry>) {
    let mut logged: HashMap<(String, String), (Instant, bool)> = HashMap::new();
    loop {
        for (pipeline, table) in tables(&telemetry) {
            let key = (pipeline.clone(), table.table.clone());
            let (at, done) = logged.entry(key).or_insert((Instant::now(), false));
            let finished = table.is_finished();
            if *done || (!finished && at.elapsed() < LOG_EVERY) {
                continue;
            }
            *at = Instant::now();
            *done = finished;
            let eta = table.eta().map_or_else(String::new, |eta| format!("{}", eta.as_secs()));
            tracing::info!(
                pipeline = %pipeline,
                table = %table.table,
                rows = table.rows(),
                estimated = table.estimated(),
                percent = format!("{:.0}", 100.0 * table.rows() as f64 / table.estimated().max(1) as f64),
                rows_per_sec = format!("{:.0}", table.rate()),
                eta_s = %eta,
                "{}",
                if finished { "snapshot table done" } else { "snapshot progress" }
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Standard error for the log: above the progress bars while they show.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &*BARS.read().expect("bars lock") {
            Some(bars) => bars.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
