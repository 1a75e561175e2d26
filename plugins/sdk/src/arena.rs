//! Reading and writing the column-wise batch layout of the WIT (`text`
//! arena, lists of numbers for values, headers and record fields).
use crate::bindings::sluice::plugin::types::{self as wit, Op};
use crate::{Header, Position, Value};

use sluice_layout::{BatchLists, PositionRef, RecordRef, kind, position_kind};
pub(crate) use sluice_layout::{NONE32, NONE64};

fn present32(n: u32) -> Option<u32> {
    (n != NONE32).then_some(n)
}

fn present64(n: u64) -> Option<u64> {
    (n != NONE64).then_some(n)
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
        let (start, len) = sluice_layout::unspan(span);
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
        let &[span, n1, n2, n3] = &self.batch.records.positions[4 * i..4 * i + 4] else {
            unreachable!("four")
        };
        match self.batch.records.position_kinds[i] {
            position_kind::BINLOG => Position::Binlog {
                file: self.str(span),
                pos: n1,
                gtid: present64(n2).map(|g| self.str(g)),
                row: n3 as u32,
            },
            position_kind::KAFKA => Position::Kafka {
                topic: self.str(span),
                partition: n1 as i32,
                offset: n2 as i64,
            },
            _ => Position::Other(self.str(span)),
        }
    }

    pub fn headers(&self, i: u32) -> Vec<Header> {
        let range = self.batch.records.headers[i as usize];
        let (start, count) = ((range >> 32) as usize, range as u32 as usize);
        self.batch.headers[2 * start..2 * (start + count)]
            .chunks_exact(2)
            .map(|h| Header {
                key: self.str(h[0]),
                value: self.bytes(h[1]),
            })
            .collect()
    }
}

/// Builds a batch in the column-wise layout.
#[derive(Default)]
pub(crate) struct Writer {
    lists: BatchLists,
    pub schemas: Vec<wit::Schema>,
}

/// A batch with no records, to build one in (also for guests that answer
/// through the raw bindings, such as the host's test guests).
pub fn empty_batch() -> wit::Batch {
    Writer::default().into_batch()
}

impl Writer {
    pub fn span(&mut self, bytes: &[u8]) -> u64 {
        self.lists.span(bytes)
    }

    /// Appends a record; returns its index.
    pub fn push(&mut self, r: RecordRef<'_>) -> u32 {
        self.lists.push(r)
    }

    pub fn into_batch(self) -> wit::Batch {
        sluice_layout::into_batch!(self.lists, self.schemas, wit)
    }
}

impl Position {
    pub(crate) fn as_position_ref(&self) -> PositionRef<'_> {
        match self {
            Position::Binlog { file, pos, gtid, row } => PositionRef::Binlog {
                file,
                pos: *pos,
                gtid: gtid.as_deref(),
                row: *row,
            },
            Position::Kafka { topic, partition, offset } => PositionRef::Kafka {
                topic,
                partition: *partition,
                offset: *offset,
            },
            Position::Other(s) => PositionRef::Other(s),
        }
    }
}
