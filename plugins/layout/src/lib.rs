//! The batch layout of `sluice:plugin` (`wit/plugin.wit`): the column values
//! and headers it carries, and how values, positions and record fields are
//! numbered and packed into lists of numbers and one text arena. The host
//! (wasmtime bindings) and the SDK (wit-bindgen bindings) each have their own
//! generated `batch` type; both write through [`BatchLists`] and move its
//! lists into their bindings with [`into_batch!`], so the layout is written
//! down once.
mod value;

pub use value::{Header, Value};

/// Absent, in the WIT's lists of numbers.
pub const NONE32: u32 = u32::MAX;
pub const NONE64: u64 = u64::MAX;

/// Value kinds, numbered as in the WIT's `values.kinds`.
pub mod kind {
    pub const NULL: u8 = 0;
    pub const INT: u8 = 1;
    pub const UINT: u8 = 2;
    pub const FLOAT: u8 = 3;
    pub const DECIMAL: u8 = 4;
    pub const STR: u8 = 5;
    pub const BYTES: u8 = 6;
    pub const DATE: u8 = 7;
    pub const TIME: u8 = 8;
    pub const DATETIME: u8 = 9;
    pub const TIMESTAMP: u8 = 10;
    pub const JSON: u8 = 11;
}

/// Record operations, numbered as the WIT's `op` cases (`records.ops`).
pub mod op {
    pub const READ: u8 = 0;
    pub const INSERT: u8 = 1;
    pub const UPDATE: u8 = 2;
    pub const DELETE: u8 = 3;
    pub const MESSAGE: u8 = 4;
}

/// Position kinds, numbered as in the WIT's `records.position-kinds`.
pub mod position_kind {
    pub const BINLOG: u8 = 0;
    pub const KAFKA: u8 = 1;
    pub const OTHER: u8 = 2;
}

/// A span's start and length in the text arena.
pub fn unspan(span: u64) -> (usize, usize) {
    ((span >> 32) as usize, span as u32 as usize)
}

/// A record's position, borrowed: the host keeps binlog file names as shared
/// `Arc<str>`, the SDK as owned strings.
pub enum PositionRef<'a> {
    Binlog {
        file: &'a str,
        pos: u64,
        gtid: Option<&'a str>,
        row: u32,
    },
    Kafka {
        topic: &'a str,
        partition: i32,
        offset: i64,
    },
    Other(&'a str),
}

/// One record to write, borrowed from either side's record type.
pub struct RecordRef<'a> {
    /// The WIT's `op`, as its number.
    pub op: u8,
    pub position: PositionRef<'a>,
    pub ts_ms: i64,
    /// The schema's id within the batch.
    pub schema: Option<u32>,
    pub before: Option<&'a [Value]>,
    pub after: Option<&'a [Value]>,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
    pub headers: &'a [Header],
    pub destination: Option<&'a str>,
}

/// The lists of a batch being written, named as the WIT's fields
/// (`header_ranges` is `records.headers`; `headers` the batch's pairs of spans).
#[derive(Default)]
pub struct BatchLists {
    pub text: Vec<u8>,
    pub kinds: Vec<u8>,
    pub data: Vec<u64>,
    pub headers: Vec<u64>,
    pub ops: Vec<u8>,
    pub ts_ms: Vec<i64>,
    pub schemas: Vec<u32>,
    pub before: Vec<u32>,
    pub after: Vec<u32>,
    pub keys: Vec<u64>,
    pub payloads: Vec<u64>,
    pub header_ranges: Vec<u64>,
    pub destinations: Vec<u64>,
    pub position_kinds: Vec<u8>,
    pub positions: Vec<u64>,
}

impl BatchLists {
    /// Lists sized for `records` records.
    pub fn with_capacity(records: usize) -> Self {
        BatchLists {
            ops: Vec::with_capacity(records),
            ts_ms: Vec::with_capacity(records),
            schemas: Vec::with_capacity(records),
            before: Vec::with_capacity(records),
            after: Vec::with_capacity(records),
            keys: Vec::with_capacity(records),
            payloads: Vec::with_capacity(records),
            header_ranges: Vec::with_capacity(records),
            destinations: Vec::with_capacity(records),
            position_kinds: Vec::with_capacity(records),
            positions: Vec::with_capacity(4 * records),
            ..BatchLists::default()
        }
    }

    /// Makes room for `records` more records the size of those written so
    /// far: growing the arenas step by step was most of the host's encoding
    /// time (copies of copies).
    pub fn reserve_like_written(&mut self, records: usize) {
        let written = self.ops.len().max(1);
        self.text.reserve(self.text.len() / written * records);
        self.kinds.reserve(self.kinds.len() / written * records);
        self.data.reserve(self.data.len() / written * records);
    }

    /// Appends `bytes` to the text arena; returns their span.
    pub fn span(&mut self, bytes: &[u8]) -> u64 {
        let start = self.text.len() as u64;
        self.text.extend_from_slice(bytes);
        start << 32 | bytes.len() as u64
    }

    fn optional_span(&mut self, bytes: Option<&[u8]>) -> u64 {
        bytes.map_or(NONE64, |b| self.span(b))
    }

    fn value(&mut self, v: &Value) -> (u8, u64) {
        match v {
            Value::Null => (kind::NULL, 0),
            Value::Int(i) => (kind::INT, *i as u64),
            Value::Uint(u) => (kind::UINT, *u),
            Value::Float(f) => (kind::FLOAT, f.to_bits()),
            Value::Decimal(s) => (kind::DECIMAL, self.span(s.as_bytes())),
            Value::Str(s) => (kind::STR, self.span(s.as_bytes())),
            Value::Bytes(b) => (kind::BYTES, self.span(b)),
            Value::Date(s) => (kind::DATE, self.span(s.as_bytes())),
            Value::Time(s) => (kind::TIME, self.span(s.as_bytes())),
            Value::Datetime(s) => (kind::DATETIME, self.span(s.as_bytes())),
            Value::Timestamp(t) => (kind::TIMESTAMP, *t as u64),
            Value::Json(s) => (kind::JSON, self.span(s.as_bytes())),
        }
    }

    fn row(&mut self, row: Option<&[Value]>) -> u32 {
        let Some(row) = row else { return NONE32 };
        let start = self.kinds.len() as u32;
        for v in row {
            let (kind, data) = self.value(v);
            self.kinds.push(kind);
            self.data.push(data);
        }
        start
    }

    /// Appends a record; returns its index.
    pub fn push(&mut self, r: RecordRef<'_>) -> u32 {
        let (position_kind, position) = match r.position {
            PositionRef::Binlog { file, pos, gtid, row } => {
                let gtid = self.optional_span(gtid.map(str::as_bytes));
                (position_kind::BINLOG, [self.span(file.as_bytes()), pos, gtid, u64::from(row)])
            }
            PositionRef::Kafka { topic, partition, offset } => (
                position_kind::KAFKA,
                [self.span(topic.as_bytes()), partition as u64, offset as u64, 0],
            ),
            PositionRef::Other(s) => (position_kind::OTHER, [self.span(s.as_bytes()), 0, 0, 0]),
        };
        let before = self.row(r.before);
        let after = self.row(r.after);
        let key = self.optional_span(r.key);
        let payload = self.optional_span(r.payload);
        let header_range = (self.headers.len() as u64 / 2) << 32 | r.headers.len() as u64;
        for h in r.headers {
            let header = [self.span(h.key.as_bytes()), self.span(&h.value)];
            self.headers.extend(header);
        }
        let destination = self.optional_span(r.destination.map(str::as_bytes));
        let index = self.ops.len() as u32;
        self.ops.push(r.op);
        self.ts_ms.push(r.ts_ms);
        self.schemas.push(r.schema.unwrap_or(NONE32));
        self.before.push(before);
        self.after.push(after);
        self.keys.push(key);
        self.payloads.push(payload);
        self.header_ranges.push(header_range);
        self.destinations.push(destination);
        self.position_kinds.push(position_kind);
        self.positions.extend(position);
        index
    }
}

/// Moves a [`BatchLists`] and its schemas into the `batch` of a bindings
/// module in scope: `into_batch!(lists, schemas, wit)`.
#[macro_export]
macro_rules! into_batch {
    ($lists:expr, $schemas:expr, $wit:ident) => {{
        let lists: $crate::BatchLists = $lists;
        $wit::Batch {
            schemas: $schemas,
            text: lists.text,
            values: $wit::Values {
                kinds: lists.kinds,
                data: lists.data,
            },
            headers: lists.headers,
            records: $wit::Records {
                ops: lists.ops,
                ts_ms: lists.ts_ms,
                schemas: lists.schemas,
                before: lists.before,
                after: lists.after,
                keys: lists.keys,
                payloads: lists.payloads,
                headers: lists.header_ranges,
                destinations: lists.destinations,
                position_kinds: lists.position_kinds,
                positions: lists.positions,
            },
        }
    }};
}
