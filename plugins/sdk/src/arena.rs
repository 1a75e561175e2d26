//! Reading and writing the column-wise batch layout of the WIT (`text`
//! arena, lists of numbers for values, headers and record fields).
use crate::bindings::sluice::plugin::types::{self as wit, Op};
use crate::{Header, Position, Value};

/// Absent, in the WIT's lists of numbers.
pub(crate) const NONE32: u32 = u32::MAX;
pub(crate) const NONE64: u64 = u64::MAX;

fn present32(n: u32) -> Option<u32> {
    (n != NONE32).then_some(n)
}

fn present64(n: u64) -> Option<u64> {
    (n != NONE64).then_some(n)
}

/// Value kinds, numbered as in the WIT's `values.kinds`.
mod kind {
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

const OPS: [Op; 5] = [Op::Read, Op::Insert, Op::Update, Op::Delete, Op::Message];

/// Reads records `0..n` of a received batch by index. The host wrote it, so
/// indexes and spans are trusted to be in bounds; text is still checked as
/// UTF-8 (lossily).
pub(crate) struct Reader<'a> {
    pub batch: &'a wit::Batch,
}

impl Reader<'_> {
    fn slice(&self, span: u64) -> &[u8] {
        let (start, len) = ((span >> 32) as usize, span as u32 as usize);
        &self.batch.text[start..start + len]
    }

    pub fn bytes(&self, span: u64) -> Vec<u8> {
        self.slice(span).to_vec()
    }

    pub fn str(&self, span: u64) -> String {
        String::from_utf8_lossy(self.slice(span)).into_owned()
    }

    pub fn value(&self, at: usize) -> Value {
        let data = self.batch.values.data[at];
        match self.batch.values.kinds[at] {
            kind::INT => Value::Int(data as i64),
            kind::UINT => Value::Uint(data),
            kind::FLOAT => Value::Float(f64::from_bits(data)),
            kind::DECIMAL => Value::Decimal(self.str(data)),
            kind::STR => Value::Str(self.str(data)),
            kind::BYTES => Value::Bytes(self.bytes(data)),
            kind::DATE => Value::Date(self.str(data)),
            kind::TIME => Value::Time(self.str(data)),
            kind::DATETIME => Value::Datetime(self.str(data)),
            kind::TIMESTAMP => Value::Timestamp(data as i64),
            kind::JSON => Value::Json(self.str(data)),
            _ => Value::Null,
        }
    }

    pub fn row(&self, start: u32, width: usize) -> Vec<Value> {
        (start as usize..start as usize + width).map(|at| self.value(at)).collect()
    }

    pub fn op(&self, i: u32) -> Op {
        OPS[usize::from(self.batch.records.ops[i as usize])]
    }

    pub fn ts_ms(&self, i: u32) -> i64 {
        self.batch.records.ts_ms[i as usize]
    }

    pub fn schema(&self, i: u32) -> Option<u32> {
        present32(self.batch.records.schemas[i as usize])
    }

    pub fn before(&self, i: u32) -> Option<u32> {
        present32(self.batch.records.before[i as usize])
    }

    pub fn after(&self, i: u32) -> Option<u32> {
        present32(self.batch.records.after[i as usize])
    }

    pub fn key(&self, i: u32) -> Option<Vec<u8>> {
        present64(self.batch.records.keys[i as usize]).map(|s| self.bytes(s))
    }

    pub fn payload(&self, i: u32) -> Option<Vec<u8>> {
        present64(self.batch.records.payloads[i as usize]).map(|s| self.bytes(s))
    }

    pub fn destination(&self, i: u32) -> Option<String> {
        present64(self.batch.records.destinations[i as usize]).map(|s| self.str(s))
    }

    pub fn position(&self, i: u32) -> Position {
        let i = i as usize;
        let &[span, n1, n2, n3] = &self.batch.records.positions[4 * i..4 * i + 4] else { unreachable!("four") };
        match self.batch.records.position_kinds[i] {
            0 => Position::Binlog { file: self.str(span), pos: n1, gtid: present64(n2).map(|g| self.str(g)), row: n3 as u32 },
            1 => Position::Kafka { topic: self.str(span), partition: n1 as i32, offset: n2 as i64 },
            _ => Position::Other(self.str(span)),
        }
    }

    pub fn headers(&self, i: u32) -> Vec<Header> {
        let range = self.batch.records.headers[i as usize];
        let (start, count) = ((range >> 32) as usize, range as u32 as usize);
        self.batch.headers[2 * start..2 * (start + count)]
            .chunks_exact(2)
            .map(|h| Header { key: self.str(h[0]), value: self.bytes(h[1]) })
            .collect()
    }
}

/// Builds a batch in the column-wise layout.
pub(crate) struct Writer {
    pub batch: wit::Batch,
}

impl Default for Writer {
    fn default() -> Self {
        Writer { batch: empty_batch() }
    }
}

/// A batch with no records, to build one in (also for guests that answer
/// through the raw bindings, such as the host's test guests).
pub fn empty_batch() -> wit::Batch {
    let records = wit::Records {
        ops: vec![],
        ts_ms: vec![],
        schemas: vec![],
        before: vec![],
        after: vec![],
        keys: vec![],
        payloads: vec![],
        headers: vec![],
        destinations: vec![],
        position_kinds: vec![],
        positions: vec![],
    };
    let values = wit::Values { kinds: vec![], data: vec![] };
    wit::Batch { schemas: vec![], text: vec![], values, headers: vec![], records }
}

/// A record's content in owned form, ready to be written.
pub(crate) struct RecordParts<'a> {
    pub op: Op,
    pub position: &'a Position,
    pub ts_ms: i64,
    pub schema: Option<u32>,
    pub before: Option<&'a [Value]>,
    pub after: Option<&'a [Value]>,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
    pub headers: &'a [Header],
    pub destination: Option<&'a str>,
}

impl Writer {
    pub fn span(&mut self, bytes: &[u8]) -> u64 {
        let start = self.batch.text.len() as u64;
        self.batch.text.extend_from_slice(bytes);
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
        let start = self.batch.values.kinds.len() as u32;
        for v in row {
            let (kind, data) = self.value(v);
            self.batch.values.kinds.push(kind);
            self.batch.values.data.push(data);
        }
        start
    }

    /// Appends a record; returns its index.
    pub fn push(&mut self, r: RecordParts<'_>) -> u32 {
        let (position_kind, position) = match r.position {
            Position::Binlog { file, pos, gtid, row } => {
                let gtid = self.optional_span(gtid.as_deref().map(str::as_bytes));
                (0, [self.span(file.as_bytes()), *pos, gtid, u64::from(*row)])
            }
            Position::Kafka { topic, partition, offset } => (1, [self.span(topic.as_bytes()), *partition as u64, *offset as u64, 0]),
            Position::Other(s) => (2, [self.span(s.as_bytes()), 0, 0, 0]),
        };
        let before = self.row(r.before);
        let after = self.row(r.after);
        let key = self.optional_span(r.key);
        let payload = self.optional_span(r.payload);
        let headers = (self.batch.headers.len() as u64 / 2) << 32 | r.headers.len() as u64;
        for h in r.headers {
            let header = [self.span(h.key.as_bytes()), self.span(&h.value)];
            self.batch.headers.extend(header);
        }
        let destination = self.optional_span(r.destination.map(str::as_bytes));
        let records = &mut self.batch.records;
        let index = records.ops.len() as u32;
        records.ops.push(r.op as u8);
        records.ts_ms.push(r.ts_ms);
        records.schemas.push(r.schema.unwrap_or(NONE32));
        records.before.push(before);
        records.after.push(after);
        records.keys.push(key);
        records.payloads.push(payload);
        records.headers.push(headers);
        records.destinations.push(destination);
        records.position_kinds.push(position_kind);
        records.positions.extend(position);
        index
    }
}
