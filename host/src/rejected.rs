//! Records that could not go where they were going, and why: a plugin's
//! failure, a message that could not be decoded, a row the sink cannot
//! write. They go to the dead-letter queue as they were.
use std::fmt;

use crate::record::Record;

/// Why a record did not reach its sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The plugin returned an error for this record.
    Rejected,
    /// The plugin trapped (panic, abort, unreachable, bad memory access).
    Trap,
    /// The batch ran past the plugin's time budget.
    Timeout,
    /// The plugin tried to grow memory past its cap.
    OutOfMemory,
    /// The plugin returned something that breaks the WIT contract.
    BadOutput,
    /// Not a plugin's failure: the message could not be decoded into a record.
    Undecodable,
    /// Not a plugin's failure: the sink could not write the record.
    Unwritable,
    /// Not a plugin's failure: the change lost to the target's row under
    /// the sink's conflict rule.
    Conflict,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Rejected => "rejected",
            FailureKind::Trap => "trap",
            FailureKind::Timeout => "timeout",
            FailureKind::OutOfMemory => "out-of-memory",
            FailureKind::BadOutput => "bad-output",
            FailureKind::Undecodable => "undecodable",
            FailureKind::Unwritable => "unwritable",
            FailureKind::Conflict => "conflict",
        }
    }
}

/// One record's failure, as it goes to the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFailure {
    pub kind: FailureKind,
    pub message: String,
}

/// The longest reason kept: it travels in a Kafka header and a log line.
const MESSAGE_MAX: usize = 1024;

impl RecordFailure {
    /// A reason is one printable line of at most 1 KiB, the
    /// same in the log, the dead letter's header and `sluice plugin test`:
    /// control characters a plugin put in it are shown escaped.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        RecordFailure {
            kind,
            message: one_line(message.into()),
        }
    }
}

fn one_line(message: String) -> String {
    if message.len() <= MESSAGE_MAX && !message.chars().any(char::is_control) {
        return message;
    }
    let mut line = String::with_capacity(MESSAGE_MAX + 32);
    for (at, c) in message.char_indices() {
        if line.len() >= MESSAGE_MAX {
            line.push_str(&format!("… ({} more bytes)", message.len() - at));
            break;
        }
        if c.is_control() {
            line.extend(c.escape_debug());
        } else {
            line.push(c);
        }
    }
    line
}

impl fmt::Display for RecordFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

/// A record that a plugin of the chain failed on, as it entered that plugin.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub record: Record,
    pub plugin: String,
    pub version: String,
    pub failure: RecordFailure,
}

impl Rejected {
    /// A record its source could not decode; `source` names the source
    /// (`source:mysql`, `source:kafka`) where a plugin's name would be.
    pub fn undecodable(record: Record, source: &str, reason: String) -> Self {
        Rejected {
            record,
            plugin: source.into(),
            version: String::new(),
            failure: RecordFailure::new(FailureKind::Undecodable, reason),
        }
    }

    /// A record its sink (`sink:kafka`, `sink:mysql`) cannot write.
    pub fn unwritable(record: Record, sink: &str, reason: String) -> Self {
        Self::by_sink(record, sink, FailureKind::Unwritable, reason)
    }

    /// A change that lost to the target's row under the sink's conflict rule.
    pub fn conflict(record: Record, sink: &str, reason: String) -> Self {
        Self::by_sink(record, sink, FailureKind::Conflict, reason)
    }

    fn by_sink(record: Record, sink: &str, kind: FailureKind, reason: String) -> Self {
        Rejected {
            record,
            plugin: sink.into(),
            version: String::new(),
            failure: RecordFailure::new(kind, reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_one_bounded_printable_line() {
        let failure = RecordFailure::new(FailureKind::Rejected, "bad\x1b[31m red\r\nnext");
        assert_eq!(failure.message, "bad\\u{1b}[31m red\\r\\nnext");
        let long = RecordFailure::new(FailureKind::Rejected, "é".repeat(2000));
        assert!(long.message.len() < MESSAGE_MAX + 32, "{}", long.message.len());
        assert!(
            long.message.ends_with("more bytes)"),
            "{}",
            &long.message[long.message.len() - 40..]
        );
        assert_eq!(RecordFailure::new(FailureKind::Trap, "plain").message, "plain");
    }
}
