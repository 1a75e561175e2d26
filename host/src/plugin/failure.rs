use std::fmt;

/// Why a plugin did not produce output for a record.
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
        }
    }
}

/// One record's failure, as it goes to the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFailure {
    pub kind: FailureKind,
    pub message: String,
}

impl RecordFailure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        RecordFailure {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for RecordFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

/// A record a plugin failed on, returned with the failure so nothing is lost:
/// it goes to the dead-letter queue as it entered the plugin.
#[derive(Debug, Clone)]
pub struct Failed {
    pub record: crate::record::Record,
    pub failure: RecordFailure,
}
