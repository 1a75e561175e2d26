//! Lays records out in the WIT's flat batch form (one text arena, one values
//! list, one headers list) and reads a plugin's answer back, checking every
//! index and span it returned: a plugin's output is untrusted input.
use std::collections::HashMap;
use std::sync::Arc;

use smallvec::SmallVec;

use super::bindings::wit;
use super::failure::{Failed, FailureKind, RecordFailure};
use crate::record::{Column, Header, Op, Position, Record, Schema, Value};

/// A batch ready to send, with the schema behind each id it uses.
pub(crate) struct Encoded {
    pub batch: wit::Batch,
    pub schemas: Vec<Arc<Schema>>,
}

pub(crate) fn encode(records: &[Record]) -> Encoded {
    let mut encoder = Encoder {
        batch: wit::Batch { schemas: vec![], text: vec![], values: vec![], headers: vec![], records: Vec::with_capacity(records.len()) },
        schemas: Vec::new(),
        ids: HashMap::new(),
    };
    if let Some((first, rest)) = records.split_first() {
        encoder.push(first);
        // Sized from the first record: growing the arenas step by step was
        // most of the encoding time (copies of copies).
        let batch = &mut encoder.batch;
        batch.text.reserve(batch.text.len() * rest.len());
        batch.values.reserve(batch.values.len() * rest.len());
        for record in rest {
            encoder.push(record);
        }
    }
    Encoded { batch: encoder.batch, schemas: encoder.schemas }
}

struct Encoder {
    batch: wit::Batch,
    schemas: Vec<Arc<Schema>>,
    ids: HashMap<*const Schema, u32>,
}

impl Encoder {
    fn span(&mut self, bytes: &[u8]) -> wit::Span {
        let start = self.batch.text.len() as u32;
        self.batch.text.extend_from_slice(bytes);
        wit::Span { start, len: bytes.len() as u32 }
    }

    fn schema_id(&mut self, schema: &Arc<Schema>) -> u32 {
        if let Some(&id) = self.ids.get(&Arc::as_ptr(schema)) {
            return id;
        }
        let id = self.schemas.len() as u32;
        self.batch.schemas.push(wit::Schema {
            id,
            database: schema.database.clone(),
            table: schema.table.clone(),
            columns: schema.columns.iter().map(|c| wit::Column { name: c.name.clone(), sql_type: c.sql_type.clone() }).collect(),
            key: schema.key.clone(),
        });
        self.schemas.push(schema.clone());
        self.ids.insert(Arc::as_ptr(schema), id);
        id
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

    fn push(&mut self, r: &Record) {
        let position = match &r.position {
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
        };
        let schema = r.schema.as_ref().map(|s| self.schema_id(s));
        let before = r.before.as_deref().map(|row| self.row(row));
        let after = r.after.as_deref().map(|row| self.row(row));
        let key = r.key.as_deref().map(|k| self.span(k));
        let payload = r.payload.as_deref().map(|p| self.span(p));
        let start = self.batch.headers.len() as u32;
        for h in &r.headers {
            let header = wit::Header { key: self.span(h.key.as_bytes()), value: self.span(&h.value) };
            self.batch.headers.push(header);
        }
        let headers = wit::Range { start, count: r.headers.len() as u32 };
        let destination = r.destination.as_ref().map(|d| self.span(d.as_bytes()));
        self.batch.records.push(wit::Record {
            op: match r.op {
                Op::Read => wit::Op::Read,
                Op::Insert => wit::Op::Insert,
                Op::Update => wit::Op::Update,
                Op::Delete => wit::Op::Delete,
                Op::Message => wit::Op::Message,
            },
            position,
            ts_ms: r.ts_ms,
            schema,
            before,
            after,
            key,
            payload,
            headers,
            destination,
        });
    }
}

/// What one input record became. Nearly always one record: kept inline, not
/// in an allocation of its own per record.
pub type Outputs = SmallVec<[Record; 1]>;

/// Per-input outputs.
pub(crate) type Decoded = Vec<Result<Outputs, Failed>>;

/// Reads a plugin's answer for `input`, moving kept records into the output.
/// A breach that voids the whole answer gives the input back with the reason.
pub(crate) fn decode(
    result: wit::BatchResult,
    input: Vec<Record>,
    schemas: &[Arc<Schema>],
) -> Result<Decoded, (String, Vec<Record>)> {
    if result.results.len() != input.len() {
        let message = format!(
            "returned {} results for {} records (exactly one per record is required)",
            result.results.len(),
            input.len()
        );
        return Err((message, input));
    }
    let mut by_id: HashMap<u32, Arc<Schema>> = schemas.iter().enumerate().map(|(i, s)| (i as u32, s.clone())).collect();
    for s in &result.emitted.schemas {
        if by_id.contains_key(&s.id) {
            return Err((format!("added schema id {} clashes with another schema of the batch", s.id), input));
        }
        let schema = Schema {
            database: s.database.clone(),
            table: s.table.clone(),
            columns: s.columns.iter().map(|c| Column { name: c.name.clone(), sql_type: c.sql_type.clone() }).collect(),
            key: s.key.clone(),
        };
        by_id.insert(s.id, Arc::new(schema));
    }
    let reader = Reader { batch: &result.emitted, schemas: &by_id };
    Ok(result
        .results
        .into_iter()
        .zip(input)
        .map(|(result_of, input)| match result_of {
            Err(e) => Err(Failed { record: input, failure: RecordFailure::new(FailureKind::Rejected, e.message) }),
            Ok(range) => {
                let (start, count) = (range.start as usize, range.count as usize);
                match result.outputs.get(start..start.saturating_add(count)) {
                    Some(outputs) => resolve(outputs, input, &reader),
                    None => {
                        let n = result.outputs.len();
                        let message = format!("outputs {start}+{count} lie outside the {n} returned");
                        Err(Failed { record: input, failure: RecordFailure::new(FailureKind::BadOutput, message) })
                    }
                }
            }
        })
        .collect())
}

/// Turns one record's outputs into records: a kept input is moved into its
/// last use and cloned only for earlier ones (fan-out).
fn resolve(outputs: &[wit::Output], input: Record, reader: &Reader<'_>) -> Result<Outputs, Failed> {
    // Emitted records are read first: a bad one fails the input, which must still be at hand.
    let emitted: Vec<Result<Record, String>> = outputs
        .iter()
        .filter_map(|o| match o {
            wit::Output::Emit(i) => Some(reader.record(*i)),
            _ => None,
        })
        .collect();
    if let Some(Err(message)) = emitted.iter().find(|e| e.is_err()) {
        let failure = RecordFailure::new(FailureKind::BadOutput, message.clone());
        return Err(Failed { record: input, failure });
    }
    let mut emitted = emitted.into_iter().map(|e| e.expect("checked above"));
    let mut keeps = outputs.iter().filter(|o| !matches!(o, wit::Output::Emit(_))).count();
    let mut input = Some(input);
    let mut take = || {
        keeps -= 1;
        if keeps == 0 { input.take().expect("input used once more") } else { input.clone().expect("input present") }
    };
    Ok(outputs
        .iter()
        .map(|o| match o {
            wit::Output::Keep => take(),
            wit::Output::KeepTo(destination) => Record { destination: Some(destination.clone()), ..take() },
            wit::Output::Emit(_) => emitted.next().expect("one emitted record per emit"),
        })
        .collect())
}

struct Reader<'a> {
    batch: &'a wit::Batch,
    schemas: &'a HashMap<u32, Arc<Schema>>,
}

impl Reader<'_> {
    fn bytes(&self, span: wit::Span) -> Result<&[u8], String> {
        let (start, len) = (span.start as usize, span.len as usize);
        self.batch
            .text
            .get(start..start.saturating_add(len))
            .ok_or_else(|| format!("span {start}+{len} lies outside the {}-byte text arena", self.batch.text.len()))
    }

    fn text(&self, span: wit::Span) -> Result<String, String> {
        String::from_utf8(self.bytes(span)?.to_vec()).map_err(|e| format!("text is not UTF-8: {e}"))
    }

    fn value(&self, v: &wit::Value) -> Result<Value, String> {
        Ok(match *v {
            wit::Value::Null => Value::Null,
            wit::Value::Int(i) => Value::Int(i),
            wit::Value::Uint(u) => Value::Uint(u),
            wit::Value::Float(f) => Value::Float(f),
            wit::Value::Decimal(s) => Value::Decimal(self.text(s)?),
            wit::Value::Str(s) => Value::Str(self.text(s)?),
            wit::Value::Bytes(s) => Value::Bytes(self.bytes(s)?.to_vec()),
            wit::Value::Date(s) => Value::Date(self.text(s)?),
            wit::Value::Time(s) => Value::Time(self.text(s)?),
            wit::Value::Datetime(s) => Value::Datetime(self.text(s)?),
            wit::Value::Timestamp(t) => Value::Timestamp(t),
            wit::Value::Json(s) => Value::Json(self.text(s)?),
        })
    }

    fn row(&self, start: u32, schema: &Schema, image: &str) -> Result<Vec<Value>, String> {
        let (start, width) = (start as usize, schema.columns.len());
        let values = self.batch.values.get(start..start + width).ok_or_else(|| {
            format!("{image} row at {start} needs {width} values; the batch has {}", self.batch.values.len())
        })?;
        values.iter().zip(&schema.columns).map(|(v, c)| self.value(v).map_err(|e| format!("{image}.{}: {e}", c.name))).collect()
    }

    fn record(&self, index: u32) -> Result<Record, String> {
        let r = self.batch.records.get(index as usize).ok_or_else(|| format!("emits record {index}, which it did not return"))?;
        let schema = match r.schema {
            None => None,
            Some(id) => Some(self.schemas.get(&id).cloned().ok_or_else(|| {
                format!("output record refers to schema {id}, which neither the batch nor the plugin defined")
            })?),
        };
        if schema.is_none() && (r.before.is_some() || r.after.is_some()) {
            return Err("output record has rows but no schema".into());
        }
        let row = |start: Option<u32>, image| match (start, &schema) {
            (Some(start), Some(schema)) => self.row(start, schema, image).map(Some),
            _ => Ok(None),
        };
        let (hs, hc) = (r.headers.start as usize, r.headers.count as usize);
        let headers = self
            .batch
            .headers
            .get(hs..hs.saturating_add(hc))
            .ok_or_else(|| format!("headers {hs}+{hc} lie outside the batch's {} headers", self.batch.headers.len()))?
            .iter()
            .map(|h| Ok(Header { key: self.text(h.key)?, value: self.bytes(h.value)?.to_vec() }))
            .collect::<Result<_, String>>()?;
        Ok(Record {
            op: match r.op {
                wit::Op::Read => Op::Read,
                wit::Op::Insert => Op::Insert,
                wit::Op::Update => Op::Update,
                wit::Op::Delete => Op::Delete,
                wit::Op::Message => Op::Message,
            },
            position: match &r.position {
                wit::Position::Binlog(b) => Position::Binlog {
                    file: self.text(b.file)?.into(),
                    pos: b.pos,
                    gtid: b.gtid.map(|g| self.text(g).map(Into::into)).transpose()?,
                    row: b.row,
                },
                wit::Position::Kafka(k) => Position::Kafka { topic: self.text(k.topic)?, partition: k.partition, offset: k.offset },
                wit::Position::Other(s) => Position::Other(self.text(*s)?),
            },
            ts_ms: r.ts_ms,
            before: row(r.before, "before")?,
            after: row(r.after, "after")?,
            schema,
            key: r.key.map(|s| self.bytes(s).map(<[u8]>::to_vec)).transpose()?,
            payload: r.payload.map(|s| self.bytes(s).map(<[u8]>::to_vec)).transpose()?,
            headers,
            destination: r.destination.map(|s| self.text(s)).transpose()?,
        })
    }
}
