//! Keeps a pipeline running: a failure that trying again may cure (a lost
//! connection, a server or broker restarting) restarts it from its stored
//! position after a growing pause, each attempt logged with its cause; any
//! other failure, or one before the pipeline first ran, ends it.
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{PipelineError, run_once};
use crate::pipeline::PipelineConfig;
use crate::plugin::PluginHost;
use crate::telemetry::{PipelineTelemetry, State};

/// The first pause, doubled per failed attempt up to the longest.
const FIRST_PAUSE: Duration = Duration::from_secs(1);
const LONGEST_PAUSE: Duration = Duration::from_secs(30);
/// A run this long counts as healthy: the next failure starts the pauses over.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// Runs the pipeline until `stop`, retrying transient failures; returns the
/// failure that ended it.
pub async fn supervise(
    config: &PipelineConfig,
    host: Arc<PluginHost>,
    state_dir: &Path,
    mut stop: watch::Receiver<bool>,
    telemetry: &PipelineTelemetry,
) -> Result<(), PipelineError> {
    let ran = AtomicBool::new(false);
    let mut attempt: u32 = 0;
    loop {
        let started = Instant::now();
        if attempt == 0 {
            telemetry.set_state(State::Connecting, None);
        }
        telemetry.new_run();
        let error = match run_once(config, host.clone(), state_dir, stop.clone(), &ran, telemetry).await {
            Ok(()) => {
                telemetry.set_state(if *stop.borrow() { State::Stopped } else { State::Finished }, None);
                return Ok(());
            }
            Err(error) => error,
        };
        // A failure before the pipeline ever ran is a start-up failure: the
        // settings, the servers' set-up or their reachability are wrong.
        if *stop.borrow() || !ran.load(Ordering::Relaxed) || !error.is_transient() {
            telemetry.set_state(State::Failed, Some(error.to_string()));
            return Err(error);
        }
        attempt = if started.elapsed() >= HEALTHY_AFTER { 1 } else { attempt + 1 };
        let pause = pause(attempt);
        tracing::error!(
            pipeline = %config.name,
            attempt,
            retry_in_s = pause.as_secs(),
            "pipeline failed: {error}; restarting from its stored position"
        );
        telemetry.set_state(
            State::Retrying,
            Some(format!("{error} (attempt {attempt}, next in {} s)", pause.as_secs())),
        );
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => {
                telemetry.set_state(State::Stopped, None);
                return Ok(());
            }
        }
    }
}

fn pause(attempt: u32) -> Duration {
    FIRST_PAUSE
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(LONGEST_PAUSE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_longest() {
        let secs: Vec<u64> = (1..=7).map(|a| pause(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(pause(u32::MAX), LONGEST_PAUSE);
    }
}
