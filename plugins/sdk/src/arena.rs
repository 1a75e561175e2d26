//! Reading and writing the flat batch layout of the WIT (`text` arena,
//! `values` and `headers` lists, records pointing into them).
use crate::bindings::sluice::plugin::types as wit;
use crate::{Header, Position, Value};

/// Reads values out of a received batch. The host wrote it, so spans are
/// trusted to be in bounds; text is still checked as UTF-8 (lossily).
pub(crate) struct Reader<'a> {
    pub text: &'a [u8],
    pub values: &'a [wit::Value],
    pub headers: &'a [wit::Header],
}

impl Reader<'_> {
    pub fn bytes(&self, span: wit::Span) -> Vec<u8> {
        self.text[span.start as usize..(span.start + span.len) as usize].to_vec()
    }

    pub fn str(&self, span: wit::Span) -> String {
        let bytes = &self.text[span.start as usize..(span.start + span.len) as usize];
        String::from_utf8_lossy(bytes).into_owned()
    }

    pub fn value(&self, v: wit::Value) -> Value {
        match v {
            wit::Value::Null => Value::Null,
            wit::Value::Int(i) => Value::Int(i),
            wit::Value::Uint(u) => Value::Uint(u),
            wit::Value::Float(f) => Value::Float(f),
            wit::Value::Decimal(s) => Value::Decimal(self.str(s)),
            wit::Value::Str(s) => Value::Str(self.str(s)),
            wit::Value::Bytes(s) => Value::Bytes(self.bytes(s)),
            wit::Value::Date(s) => Value::Date(self.str(s)),
            wit::Value::Time(s) => Value::Time(self.str(s)),
            wit::Value::Datetime(s) => Value::Datetime(self.str(s)),
            wit::Value::Timestamp(t) => Value::Timestamp(t),
            wit::Value::Json(s) => Value::Json(self.str(s)),
        }
    }

    pub fn row(&self, start: u32, width: usize) -> Vec<Value> {
        self.values[start as usize..start as usize + width].iter().map(|v| self.value(*v)).collect()
    }

    pub fn position(&self, p: &wit::Position) -> Position {
        match p {
            wit::Position::Binlog(b) => Position::Binlog {
                file: self.str(b.file),
                pos: b.pos,
                gtid: b.gtid.map(|g| self.str(g)),
                row: b.row,
            },
            wit::Position::Kafka(k) => Position::Kafka { topic: self.str(k.topic), partition: k.partition, offset: k.offset },
            wit::Position::Other(s) => Position::Other(self.str(*s)),
        }
    }

    pub fn headers(&self, range: wit::Range) -> Vec<Header> {
        self.headers[range.start as usize..(range.start + range.count) as usize]
            .iter()
            .map(|h| Header { key: self.str(h.key), value: self.bytes(h.value) })
            .collect()
    }
}

/// Builds a batch in the flat layout.
#[derive(Default)]
pub(crate) struct Writer {
    pub batch: wit::Batch,
}

impl Default for wit::Batch {
    fn default() -> Self {
        wit::Batch { schemas: vec![], text: vec![], values: vec![], headers: vec![], records: vec![] }
    }
}

/// A record's content in owned form, ready to be written.
pub(crate) struct RecordParts<'a> {
    pub op: wit::Op,
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
    fn span(&mut self, bytes: &[u8]) -> wit::Span {
        let start = self.batch.text.len() as u32;
        self.batch.text.extend_from_slice(bytes);
        wit::Span { start, len: bytes.len() as u32 }
    }

    fn value(&mut self, v: &Value) -> wit::Value {
        match v {
            Value::Null => wit::Value::Null,
            Value::Int(i) => wit::Value::Int(*i),
            Value::Uint(u) => wit::Value::Uint(*u),
            Value::Float(f) => wit::Value::Float(*f),
            Value::Decimal(s) => wit::Value::Decimal(self.span(s.as_bytes())),
            Value::Str(s) => wit::Value::Str(self.span(s.as_bytes())),
            Value::Bytes(b) => wit::Value::Bytes(self.span(b)),
            Value::Date(s) => wit::Value::Date(self.span(s.as_bytes())),
            Value::Time(s) => wit::Value::Time(self.span(s.as_bytes())),
            Value::Datetime(s) => wit::Value::Datetime(self.span(s.as_bytes())),
            Value::Timestamp(t) => wit::Value::Timestamp(*t),
            Value::Json(s) => wit::Value::Json(self.span(s.as_bytes())),
        }
    }

    fn row(&mut self, row: &[Value]) -> u32 {
        let start = self.batch.values.len() as u32;
        for v in row {
            let v = self.value(v);
            self.batch.values.push(v);
        }
        start
    }

    fn position(&mut self, p: &Position) -> wit::Position {
        match p {
            Position::Binlog { file, pos, gtid, row } => wit::Position::Binlog(wit::BinlogPosition {
                file: self.span(file.as_bytes()),
                pos: *pos,
                gtid: gtid.as_ref().map(|g| self.span(g.as_bytes())),
                row: *row,
            }),
            Position::Kafka { topic, partition, offset } => wit::Position::Kafka(wit::KafkaPosition {
                topic: self.span(topic.as_bytes()),
                partition: *partition,
                offset: *offset,
            }),
            Position::Other(s) => wit::Position::Other(self.span(s.as_bytes())),
        }
    }

    /// Appends a record; returns its index.
    pub fn push(&mut self, r: RecordParts<'_>) -> u32 {
        let position = self.position(r.position);
        let before = r.before.map(|row| self.row(row));
        let after = r.after.map(|row| self.row(row));
        let key = r.key.map(|k| self.span(k));
        let payload = r.payload.map(|p| self.span(p));
        let start = self.batch.headers.len() as u32;
        for h in r.headers {
            let header = wit::Header { key: self.span(h.key.as_bytes()), value: self.span(&h.value) };
            self.batch.headers.push(header);
        }
        let headers = wit::Range { start, count: r.headers.len() as u32 };
        let destination = r.destination.map(|d| self.span(d.as_bytes()));
        let index = self.batch.records.len() as u32;
        self.batch.records.push(wit::Record {
            op: r.op,
            position,
            ts_ms: r.ts_ms,
            schema: r.schema,
            before,
            after,
            key,
            payload,
            headers,
            destination,
        });
        index
    }
}
