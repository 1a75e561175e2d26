//! A guest's stderr: each line goes to our log under the plugin's name, and
//! the last few KiB are kept so a panic message can explain a trap.
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;

use super::log_budget::LogBudget;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

const KEEP: usize = 4096;

#[derive(Clone)]
pub struct GuestStderr {
    plugin: Arc<str>,
    tail: Arc<Mutex<VecDeque<u8>>>,
    log: LogBudget,
}

impl GuestStderr {
    pub fn new(plugin: Arc<str>, log: LogBudget) -> Self {
        GuestStderr {
            plugin,
            tail: Arc::default(),
            log,
        }
    }

    /// What the guest wrote last (e.g. "panicked at src/lib.rs:10: …"), trimmed.
    pub fn tail(&self) -> String {
        let tail = self.tail.lock().expect("stderr lock");
        String::from_utf8_lossy(&tail.iter().copied().collect::<Vec<u8>>())
            .trim()
            .to_owned()
    }

    fn append(&self, bytes: &[u8]) {
        for line in String::from_utf8_lossy(bytes).lines().filter(|l| !l.trim().is_empty()) {
            if let Some(line) = self.log.take(line) {
                tracing::warn!(plugin = %self.plugin, "plugin stderr: {line}");
            }
        }
        let mut tail = self.tail.lock().expect("stderr lock");
        tail.extend(bytes);
        let excess = tail.len().saturating_sub(KEEP);
        tail.drain(..excess);
    }
}

impl IsTerminal for GuestStderr {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestStderr {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for GuestStderr {
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
impl Pollable for GuestStderr {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for GuestStderr {
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
