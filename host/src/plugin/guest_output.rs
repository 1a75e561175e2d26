//! A guest's stdout and stderr: each whole line goes to our log under the
//! plugin's name and the stream's, and a Rust panic's report on stderr is
//! kept, so the trap that follows can say what the panic said.
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;

use super::log_budget::LogBudget;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// A line longer than this is logged in pieces of this size, and a panic's
/// report is kept up to this size from its start: the message comes first.
const LINE_MAX: usize = 4096;
const PANICKED_AT: &str = " panicked at ";

#[derive(Clone)]
pub struct GuestOutput {
    plugin: Arc<str>,
    stream: &'static str,
    lines: Arc<Mutex<Lines>>,
    log: LogBudget,
}

#[derive(Default)]
struct Lines {
    /// The line being written, up to its newline.
    partial: Vec<u8>,
    /// The last panic report, from its `panicked at` line on.
    panic: Option<String>,
}

impl GuestOutput {
    pub fn stderr(plugin: Arc<str>, log: LogBudget) -> Self {
        Self::new(plugin, "stderr", log)
    }

    pub fn stdout(plugin: Arc<str>, log: LogBudget) -> Self {
        Self::new(plugin, "stdout", log)
    }

    fn new(plugin: Arc<str>, stream: &'static str, log: LogBudget) -> Self {
        GuestOutput {
            plugin,
            stream,
            lines: Arc::default(),
            log,
        }
    }

    /// The last panic report written to this stream (`thread '…' panicked at
    /// src/lib.rs:10:5:` and the lines after it), with any line not yet ended.
    pub fn panic_report(&self) -> Option<String> {
        let lines = self.lines.lock().expect("guest output lock");
        let mut report = lines.panic.clone()?;
        if !lines.partial.is_empty() && report.len() < LINE_MAX {
            report.push('\n');
            report.push_str(&String::from_utf8_lossy(&lines.partial));
        }
        Some(report)
    }

    fn append(&self, mut bytes: &[u8]) {
        let mut lines = self.lines.lock().expect("guest output lock");
        while !bytes.is_empty() {
            let room = LINE_MAX - lines.partial.len();
            let (line_end, rest) = match bytes.iter().position(|&b| b == b'\n') {
                Some(at) if at <= room => (Some(at), &bytes[at + 1..]),
                _ if bytes.len() >= room => (None, &bytes[room..]),
                _ => {
                    lines.partial.extend_from_slice(bytes);
                    return;
                }
            };
            let taken = line_end.unwrap_or(room);
            lines.partial.extend_from_slice(&bytes[..taken]);
            let line = String::from_utf8_lossy(&std::mem::take(&mut lines.partial)).into_owned();
            self.line(&mut lines, line);
            bytes = rest;
        }
    }

    fn line(&self, lines: &mut Lines, line: String) {
        if !line.trim().is_empty()
            && let Some(text) = self.log.take(&line)
        {
            tracing::warn!(plugin = %self.plugin, "plugin {}: {text}", self.stream);
        }
        if line.contains(PANICKED_AT) {
            lines.panic = Some(line);
        } else if let Some(report) = lines.panic.as_mut().filter(|r| r.len() < LINE_MAX) {
            report.push('\n');
            report.push_str(&line);
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.append(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }
    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output() -> GuestOutput {
        GuestOutput::stderr("p".into(), LogBudget::new(1 << 20))
    }

    #[test]
    fn a_panic_report_written_in_pieces_is_kept_from_its_start() {
        let out = output();
        out.append(b"earlier line\nthread '<unnamed>' pan");
        out.append(b"icked at src/lib.rs:5:9:\nthe price ");
        assert_eq!(
            out.panic_report().as_deref(),
            Some("thread '<unnamed>' panicked at src/lib.rs:5:9:\nthe price ")
        );
        out.append(b"is negative\nnote: run with RUST_BACKTRACE=1\n");
        let report = out.panic_report().unwrap();
        assert!(
            report.starts_with("thread '<unnamed>' panicked at src/lib.rs:5:9:\nthe price is negative\nnote:"),
            "{report}"
        );
    }

    #[test]
    fn a_long_panic_message_keeps_its_head() {
        let out = output();
        let message = "x".repeat(3 * LINE_MAX);
        out.append(format!("thread 'main' panicked at src/lib.rs:1:1:\nthe start {message}\nnote: end\n").as_bytes());
        let report = out.panic_report().unwrap();
        assert!(report.contains("\nthe start xxx"), "the message's head is kept");
        assert!(report.len() <= 3 * LINE_MAX, "the report is bounded ({} bytes)", report.len());
    }

    #[test]
    fn no_panic_no_report() {
        let out = output();
        out.append(b"just a line\n");
        assert_eq!(out.panic_report(), None);
    }
}
