//! The snapshot's progress while `sluice run` reads tables: on a terminal, a
//! bar per table (rows, rows/s, ETA), the log printed above the bars;
//! otherwise a log line per table every few seconds and when it is done.
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;

use crate::telemetry::{TableProgress, Telemetry};

/// The bars on screen, which log lines must be written above.
static SCREEN: RwLock<Option<MultiProgress>> = RwLock::new(None);

/// How often a progress line is logged per table when not on a terminal.
const LOG_EVERY: Duration = Duration::from_secs(5);

pub struct SnapshotDisplay {
    task: JoinHandle<()>,
    /// Updated one last time when the display ends, so that a table done
    /// just before shows as done.
    screen: Screen,
}

enum Screen {
    Bars(Arc<Mutex<Bars>>, Arc<Telemetry>),
    Lines(Arc<Mutex<Lines>>, Arc<Telemetry>),
}

impl SnapshotDisplay {
    pub fn start(telemetry: Arc<Telemetry>) -> Self {
        if !std::io::stderr().is_terminal() {
            let lines = Arc::new(Mutex::new(Lines::default()));
            let (logged, from) = (lines.clone(), telemetry.clone());
            let task = tokio::spawn(async move {
                loop {
                    logged.lock().expect("lines lock").update(&from);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            });
            return SnapshotDisplay {
                task,
                screen: Screen::Lines(lines, telemetry),
            };
        }
        let bars = Arc::new(Mutex::new(Bars::new()));
        let (drawn, from) = (bars.clone(), telemetry.clone());
        let task = tokio::spawn(async move {
            loop {
                drawn.lock().expect("bars lock").update(&from);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        SnapshotDisplay {
            task,
            screen: Screen::Bars(bars, telemetry),
        }
    }
}

impl Drop for SnapshotDisplay {
    fn drop(&mut self) {
        self.task.abort();
        match &self.screen {
            Screen::Bars(bars, telemetry) => {
                let mut bars = bars.lock().expect("bars lock");
                bars.update(telemetry);
                // What the bars show last stays on the screen.
                for (bar, _) in bars.shown.values() {
                    bar.abandon();
                }
                *SCREEN.write().expect("screen lock") = None;
            }
            Screen::Lines(lines, telemetry) => lines.lock().expect("lines lock").update(telemetry),
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

/// A bar per table, by pipeline and table.
struct Bars {
    style: ProgressStyle,
    shown: HashMap<(String, String), (ProgressBar, Arc<TableProgress>)>,
}

impl Bars {
    fn new() -> Self {
        *SCREEN.write().expect("screen lock") = Some(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        let style = ProgressStyle::with_template("{prefix:.bold} [{bar:30.cyan/blue}] {human_pos}/~{human_len} rows  {msg}")
            .expect("a valid template")
            .progress_chars("=> ");
        Bars {
            style,
            shown: HashMap::new(),
        }
    }

    fn update(&mut self, telemetry: &Telemetry) {
        let Some(screen) = SCREEN.read().expect("screen lock").clone() else {
            return;
        };
        for (pipeline, table) in tables(telemetry) {
            let key = (pipeline.clone(), table.table.clone());
            let (bar, known) = self.shown.entry(key).or_insert_with(|| {
                let bar = screen.add(ProgressBar::new(table.estimated()).with_style(self.style.clone()));
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
            let eta = table
                .eta()
                .map_or_else(String::new, |eta| format!("  ETA {}", indicatif::HumanDuration(eta)));
            bar.set_message(format!("{} rows/s{eta}", indicatif::HumanCount(table.rate() as u64)));
            if table.is_finished() {
                bar.finish();
            }
        }
    }
}

/// When each table's progress was last logged, and whether it was done.
#[derive(Default)]
struct Lines {
    logged: HashMap<(String, String), (Instant, bool)>,
}

impl Lines {
    fn update(&mut self, telemetry: &Telemetry) {
        for (pipeline, table) in tables(telemetry) {
            let key = (pipeline.clone(), table.table.clone());
            let (at, done) = self.logged.entry(key).or_insert((Instant::now(), false));
            let finished = table.is_finished();
            if *done || (!finished && at.elapsed() < LOG_EVERY) {
                continue;
            }
            *at = Instant::now();
            *done = finished;
            let percent = if finished {
                100
            } else {
                (100 * table.rows() / table.estimated().max(1)).min(100)
            };
            tracing::info!(
                pipeline = %pipeline,
                table = %table.table,
                rows = table.rows(),
                estimated = table.estimated(),
                percent,
                rows_per_sec = table.rate().round() as u64,
                eta_s = table.eta().map(|eta| eta.as_secs()),
                "{}",
                if finished { "snapshot table done" } else { "snapshot progress" }
            );
        }
    }
}

/// Standard error for the log: above the progress bars while they show.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &*SCREEN.read().expect("screen lock") {
            Some(bars) => bars.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
