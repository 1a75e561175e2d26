//! The values and headers a batch carries, the same types on both sides of
//! the plugin boundary.

/// One column value; exact where MySQL is exact (see `wit/plugin.wit`).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Value {
    Null,
    Int(i64),
    Uint(u64),
    Float(f64),
    /// DECIMAL as exact text.
    Decimal(String),
    Str(String),
    Bytes(Vec<u8>),
    /// "YYYY-MM-DD"
    Date(String),
    /// "[-]HH:MM:SS[.ffffff]"
    Time(String),
    /// "YYYY-MM-DD HH:MM:SS[.ffffff]", no time zone
    Datetime(String),
    /// Microseconds since 1970-01-01 UTC.
    Timestamp(i64),
    /// JSON document text.
    Json(String),
}

impl Value {
    /// The text of string-like values (str, decimal, date, time, datetime, json).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Decimal(s) | Value::Date(s) | Value::Time(s) | Value::Datetime(s) | Value::Json(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(v) => Some(v),
            Value::Uint(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

/// A record header: a key and raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key: String,
    pub value: Vec<u8>,
}
