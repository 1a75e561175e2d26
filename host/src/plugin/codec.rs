//! Lays records out in the WIT's column-wise batch form (one text arena,
//! lists of numbers for values, headers and record fields) and reads a
//! plugin's answer back, checking every index and span it returned: a
//! plugin's output is untrusted input.
#![allow(
    clippy::result_large_err,
    reason = "a failed record travels by value like the records beside it: both variants are as large, and a boxed error would only add an allocation"
)]

use std::collections::HashMap;
use std::sync::Arc;

use smallvec::SmallVec;

use super::bindings::wit;
use super::failure::Failed;
use super::limits::PluginLimits;
use crate::record::{Column, Header, Op, Position, Record, Schema, Value};
use crate::rejected::{FailureKind, RecordFailure};
use sluice_layout::{BatchLists, NONE32, NONE64, PositionRef, RecordRef, kind, op, position_kind};

/// A batch ready to send, with the schema behind each id it uses.
pub(crate) struct Encoded {
    pub batch: wit::Batch,
    pub schemas: Vec<Arc<Schema>>,
}

pub(crate) fn encode(records: &[Record]) -> Encoded {
    let mut encoder = Encoder {
        lists: BatchLists::with_capacity(records.len()),
        wit_schemas: Vec::new(),
        schemas: Vec::new(),
        ids: HashMap::new(),
    };
    if let Some((first, rest)) = records.split_first() {
        encoder.push(first);
        encoder.lists.reserve_like_written(rest.len());
        for record in rest {
            encoder.push(record);
        }
    }
    let batch = sluice_layout::into_batch!(encoder.lists, encoder.wit_schemas, wit);
    Encoded {
        batch,
        schemas: encoder.schemas,
    }
}

struct Encoder {
    lists: BatchLists,
    wit_schemas: Vec<wit::Schema>,
    schemas: Vec<Arc<Schema>>,
    ids: HashMap<*const Schema, u32>,
}

impl Encoder {
    fn schema_id(&mut self, schema: &Arc<Schema>) -> u32 {
        if let Some(&id) = self.ids.get(&Arc::as_ptr(schema)) {
            return id;
        }
        let id = self.schemas.len() as u32;
        self.wit_schemas.push(wit::Schema {
            id,
            database: schema.database.clone(),
            table: schema.table.clone(),
            columns: schema
                .columns
                .iter()
                .map(|c| wit::Column {
                    name: c.name.clone(),
                    sql_type: c.sql_type.clone(),
                })
                .collect(),
            key: schema.key.clone(),
        });
        self.schemas.push(schema.clone());
        self.ids.insert(Arc::as_ptr(schema), id);
        id
    }

    fn push(&mut self, r: &Record) {
        let schema = r.schema.as_ref().map(|s| self.schema_id(s));
        self.lists.push(RecordRef {
            op: match r.op {
                Op::Read => op::READ,
                Op::Insert => op::INSERT,
                Op::Update => op::UPDATE,
                Op::Delete => op::DELETE,
                Op::Message => op::MESSAGE,
            },
            position: match &r.position {
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
            },
            ts_ms: r.ts_ms,
            schema,
            before: r.before.as_deref(),
            after: r.after.as_deref(),
            key: r.key.as_deref(),
            payload: r.payload.as_deref(),
            headers: &r.headers,
            destination: r.destination.as_deref(),
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
///
/// Outputs are counted before any is read: a record fanning out past
/// `max_outputs_per_record` fails alone, and an answer past
/// `max_outputs_per_batch` is refused whole, before the host builds
/// records from it (a plugin's output is bounded by its memory cap, the
/// records the host makes of it are several times larger).
pub(crate) fn decode(
    result: wit::BatchResult,
    input: Vec<Record>,
    schemas: &[Arc<Schema>],
    limits: &PluginLimits,
) -> Result<Decoded, (String, Vec<Record>)> {
    if result.output_counts.len() != input.len() {
        let message = format!(
            "returned {} output counts for {} records (exactly one per record is required)",
            result.output_counts.len(),
            input.len()
        );
        return Err((message, input));
    }
    if result.destinations.len() != result.outputs.len() {
        let message = format!(
            "returned {} destinations for {} outputs (one per output is required)",
            result.destinations.len(),
            result.outputs.len()
        );
        return Err((message, input));
    }
    if result.outputs.len() > limits.max_outputs_per_batch {
        let message = format!(
            "returned {} outputs, over limits.max_outputs_per_batch of {}",
            result.outputs.len(),
            limits.max_outputs_per_batch
        );
        return Err((message, input));
    }
    let failed = result.output_counts.iter().filter(|&&n| n == NONE32).count();
    if failed != result.errors.len() {
        return Err((
            format!("returned {} errors for {failed} failed records", result.errors.len()),
            input,
        ));
    }
    let mut by_id: HashMap<u32, Arc<Schema>> = schemas.iter().enumerate().map(|(i, s)| (i as u32, s.clone())).collect();
    for s in &result.emitted.schemas {
        if by_id.contains_key(&s.id) {
            return Err((format!("added schema id {} clashes with another schema of the batch", s.id), input));
        }
        let schema = Schema {
            database: s.database.clone(),
            table: s.table.clone(),
            columns: s
                .columns
                .iter()
                .map(|c| Column {
                    name: c.name.clone(),
                    sql_type: c.sql_type.clone(),
                })
                .collect(),
            key: s.key.clone(),
        };
        by_id.insert(s.id, Arc::new(schema));
    }
    let reader = Reader {
        batch: &result.emitted,
        schemas: &by_id,
    };
    let mut errors = result.errors.into_iter();
    let mut next = 0usize;
    Ok(result
        .output_counts
        .iter()
        .zip(input)
        .map(|(&count, input)| {
            if count == NONE32 {
                let message = errors.next().expect("counted above");
                return Err(Failed {
                    record: input,
                    failure: RecordFailure::new(FailureKind::Rejected, message),
                });
            }
            let (start, count) = (next, count as usize);
            next = start.saturating_add(count);
            if count > limits.max_outputs_per_record {
                let message = format!(
                    "fanned out to {count} outputs, over limits.max_outputs_per_record of {}",
                    limits.max_outputs_per_record
                );
                return Err(Failed {
                    record: input,
                    failure: RecordFailure::new(FailureKind::BadOutput, message),
                });
            }
            match (result.outputs.get(start..next), result.destinations.get(start..next)) {
                (Some(outputs), Some(destinations)) => resolve(outputs, destinations, input, &reader),
                _ => {
                    let n = result.outputs.len();
                    let message = format!("outputs {start}+{count} lie outside the {n} returned");
                    Err(Failed {
                        record: input,
                        failure: RecordFailure::new(FailureKind::BadOutput, message),
                    })
                }
            }
        })
        .collect())
}

/// Turns one record's outputs into records: a kept input is moved into its
/// last use and cloned only for earlier ones (fan-out).
fn resolve(outputs: &[u32], destinations: &[u64], input: Record, reader: &Reader<'_>) -> Result<Outputs, Failed> {
    if let ([NONE32], [NONE64]) = (outputs, destinations) {
        // By far the commonest answer: the record as it came.
        return Ok(smallvec::smallvec![input]);
    }
    let bad_output = |input, message: String| {
        Err(Failed {
            record: input,
            failure: RecordFailure::new(FailureKind::BadOutput, message),
        })
    };
    // Emitted records and destinations are read first: a bad one fails the
    // input, which must still be at hand.
    let mut read: SmallVec<[Answer; 1]> = SmallVec::with_capacity(outputs.len());
    for (&output, &destination) in outputs.iter().zip(destinations) {
        let answer = match (output, destination) {
            (NONE32, NONE64) => Ok(Answer::Keep(None)),
            (NONE32, span) => reader.text(span).map(|d| Answer::Keep(Some(d))),
            (emitted, _) => reader.record(emitted).map(Answer::Emitted),
        };
        match answer {
            Ok(answer) => read.push(answer),
            Err(message) => return bad_output(input, message),
        }
    }
    let mut keeps = read.iter().filter(|a| matches!(a, Answer::Keep(_))).count();
    let mut input = Some(input);
    let mut take = || {
        keeps -= 1;
        if keeps == 0 {
            input.take().expect("input used once more")
        } else {
            input.clone().expect("input present")
        }
    };
    Ok(read
        .into_iter()
        .map(|answer| match answer {
            Answer::Keep(None) => take(),
            Answer::Keep(Some(destination)) => Record {
                destination: Some(destination),
                ..take()
            },
            Answer::Emitted(record) => record,
        })
        .collect())
}

/// One output as read from a plugin's answer.
enum Answer {
    /// The input record, sent to this destination when one is given.
    Keep(Option<String>),
    Emitted(Record),
}

struct Reader<'a> {
    batch: &'a wit::Batch,
    schemas: &'a HashMap<u32, Arc<Schema>>,
}

impl Reader<'_> {
    fn bytes(&self, span: u64) -> Result<&[u8], String> {
        let (start, len) = sluice_layout::unspan(span);
        self.batch
            .text
            .get(start..start.saturating_add(len))
            .ok_or_else(|| format!("span {start}+{len} lies outside the {}-byte text arena", self.batch.text.len()))
    }

    fn text(&self, span: u64) -> Result<String, String> {
        String::from_utf8(self.bytes(span)?.to_vec()).map_err(|e| format!("text is not UTF-8: {e}"))
    }

    fn optional<T>(&self, span: u64, read: impl FnOnce(u64) -> Result<T, String>) -> Result<Option<T>, String> {
        if span == NONE64 { Ok(None) } else { read(span).map(Some) }
    }

    fn value(&self, kind: u8, data: u64) -> Result<Value, String> {
        Ok(match kind {
            kind::NULL => Value::Null,
            kind::INT => Value::Int(data as i64),
            kind::UINT => Value::Uint(data),
            kind::FLOAT => Value::Float(f64::from_bits(data)),
            kind::DECIMAL => Value::Decimal(self.text(data)?),
            kind::STR => Value::Str(self.text(data)?),
            kind::BYTES => Value::Bytes(self.bytes(data)?.to_vec()),
            kind::DATE => Value::Date(self.text(data)?),
            kind::TIME => Value::Time(self.text(data)?),
            kind::DATETIME => Value::Datetime(self.text(data)?),
            kind::TIMESTAMP => Value::Timestamp(data as i64),
            kind::JSON => Value::Json(self.text(data)?),
            other => return Err(format!("value kind {other} is not one of 0..=11")),
        })
    }

    fn row(&self, start: u32, schema: &Schema, image: &str) -> Result<Vec<Value>, String> {
        let (start, width) = (start as usize, schema.columns.len());
        let values = &self.batch.values;
        let (Some(kinds), Some(data)) = (values.kinds.get(start..start + width), values.data.get(start..start + width)) else {
            let n = values.kinds.len().min(values.data.len());
            return Err(format!("{image} row at {start} needs {width} values; the batch has {n}"));
        };
        // Sized up front: collected through `Result`, a row would start at
        // four values and grow.
        let mut row = Vec::with_capacity(width);
        for ((&k, &d), c) in kinds.iter().zip(data).zip(&schema.columns) {
            row.push(self.value(k, d).map_err(|e| format!("{image}.{}: {e}", c.name))?);
        }
        Ok(row)
    }

    fn record(&self, index: u32) -> Result<Record, String> {
        let r = &self.batch.records;
        let i = index as usize;
        let missing = || format!("emits record {index}, which it did not return in full (every list of `records` needs an entry)");
        let at = |list: &[u64]| list.get(i).copied().ok_or_else(missing);
        let at32 = |list: &[u32]| list.get(i).copied().ok_or_else(missing);
        let (op, ts_ms, position_kind) = (
            *r.ops.get(i).ok_or_else(missing)?,
            *r.ts_ms.get(i).ok_or_else(missing)?,
            *r.position_kinds.get(i).ok_or_else(missing)?,
        );
        // A span (file, topic or text), then up to three numbers, by kind.
        let &[span, n1, n2, n3] = r.positions.get(4 * i..4 * i + 4).ok_or_else(missing)? else {
            unreachable!("four")
        };
        let schema = match at32(&r.schemas)? {
            NONE32 => None,
            id => Some(
                self.schemas
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| format!("output record refers to schema {id}, which neither the batch nor the plugin defined"))?,
            ),
        };
        let (before, after) = (at32(&r.before)?, at32(&r.after)?);
        if schema.is_none() && (before != NONE32 || after != NONE32) {
            return Err("output record has rows but no schema".into());
        }
        let image = |start: u32, image| match (start, &schema) {
            (NONE32, _) | (_, None) => Ok(None),
            (start, Some(schema)) => self.row(start, schema, image).map(Some),
        };
        let headers = at(&r.headers)?;
        let (hs, hc) = ((headers >> 32) as usize, headers as u32 as usize);
        let headers = self
            .batch
            .headers
            .get(2 * hs..2 * hs.saturating_add(hc))
            .ok_or_else(|| format!("headers {hs}+{hc} lie outside the batch's {} headers", self.batch.headers.len() / 2))?
            .chunks_exact(2)
            .map(|h| {
                Ok(Header {
                    key: self.text(h[0])?,
                    value: self.bytes(h[1])?.to_vec(),
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Record {
            op: match op {
                op::READ => Op::Read,
                op::INSERT => Op::Insert,
                op::UPDATE => Op::Update,
                op::DELETE => Op::Delete,
                op::MESSAGE => Op::Message,
                other => return Err(format!("op {other} is not one of 0..=4")),
            },
            position: match position_kind {
                position_kind::BINLOG => Position::Binlog {
                    file: self.text(span)?.into(),
                    pos: n1,
                    gtid: self.optional(n2, |g| self.text(g))?.map(Into::into),
                    row: n3 as u32,
                },
                position_kind::KAFKA => Position::Kafka {
                    topic: self.text(span)?,
                    partition: n1 as i32,
                    offset: n2 as i64,
                },
                position_kind::OTHER => Position::Other(self.text(span)?),
                other => return Err(format!("position kind {other} is not one of 0..=2")),
            },
            ts_ms,
            before: image(before, "before")?,
            after: image(after, "after")?,
            schema,
            key: self.optional(at(&r.keys)?, |s| self.bytes(s).map(<[u8]>::to_vec))?,
            payload: self.optional(at(&r.payloads)?, |s| self.bytes(s).map(<[u8]>::to_vec))?,
            headers,
            destination: self.optional(at(&r.destinations)?, |s| self.text(s))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> Vec<Record> {
        let schema = Arc::new(Schema {
            database: "shop".into(),
            table: "items".into(),
            columns: ["i", "u", "f", "dec", "s", "b", "d", "t", "dt", "ts", "j", "n"]
                .map(|name| Column {
                    name: name.into(),
                    sql_type: "x".into(),
                })
                .into(),
            key: vec![0],
        });
        let row = vec![
            Value::Int(-7),
            Value::Uint(u64::MAX),
            Value::Float(-0.5),
            Value::Decimal("-12.3400".into()),
            Value::Str("ünï".into()),
            Value::Bytes(vec![0, 255]),
            Value::Date("0000-00-00".into()),
            Value::Time("-838:59:59.000000".into()),
            Value::Datetime("2026-11-27 10:00:00.5".into()),
            Value::Timestamp(-1),
            Value::Json("{\"a\":1}".into()),
            Value::Null,
        ];
        let binlog = Position::Binlog {
            file: "binlog.000002".into(),
            pos: 4,
            gtid: Some("0-1-9".into()),
            row: 3,
        };
        let update = Record {
            op: Op::Update,
            before: Some(row.clone()),
            ..Record::read(binlog, 11, schema.clone(), row.clone())
        };
        let message = Record {
            op: Op::Message,
            position: Position::Kafka {
                topic: "in".into(),
                partition: 2,
                offset: -1,
            },
            ts_ms: 12,
            schema: None,
            before: None,
            after: None,
            key: Some(b"k".to_vec()),
            payload: Some(vec![]),
            headers: vec![
                Header {
                    key: "h".into(),
                    value: b"v".to_vec(),
                },
                Header {
                    key: "h2".into(),
                    value: vec![],
                },
            ],
            destination: Some("routed".into()),
        };
        let snapshot = Record::read(Position::Other("snapshot:x".into()), 13, schema, row);
        vec![update, message, snapshot]
    }

    fn answer(
        emitted: wit::Batch,
        output_counts: Vec<u32>,
        outputs: Vec<u32>,
        destinations: Vec<u64>,
        errors: Vec<String>,
    ) -> wit::BatchResult {
        wit::BatchResult {
            emitted,
            output_counts,
            outputs,
            destinations,
            errors,
        }
    }

    #[test]
    fn emitted_records_read_back_equal_and_kept_ones_move_with_their_destination() {
        let input = records();
        let encoded = encode(&input);
        // The plugin emits every input unchanged (its emitted batch is the input's
        // layout, with no schemas added), keeps the first again routed
        // elsewhere, drops the second's keep and fails nothing.
        let mut emitted = encode(&input).batch;
        emitted.schemas.clear();
        let routed = emitted.text.len() as u64;
        emitted.text.extend_from_slice(b"elsewhere");
        let result = answer(
            emitted,
            vec![2, 1, 1],
            vec![0, NONE32, 1, 2],
            vec![NONE64, routed << 32 | 9, NONE64, NONE64],
            vec![],
        );
        let decoded = decode(result, input.clone(), &encoded.schemas, &PluginLimits::default()).unwrap_or_else(|(e, _)| panic!("{e}"));
        let outputs: Vec<Vec<Record>> = decoded.into_iter().map(|o| o.expect("no failure").into_vec()).collect();
        assert_eq!(
            outputs[0],
            vec![
                input[0].clone(),
                Record {
                    destination: Some("elsewhere".into()),
                    ..input[0].clone()
                }
            ]
        );
        assert_eq!(outputs[1], vec![input[1].clone()]);
        assert_eq!(outputs[2], vec![input[2].clone()]);
    }

    #[test]
    fn failures_and_breaches_are_told_apart() {
        let input = records();
        let encoded = encode(&input);
        let mut emitted = encode(&input).batch;
        emitted.schemas.clear();
        emitted.values.kinds[0] = 12;
        let result = answer(emitted, vec![NONE32, 1, 5], vec![0], vec![NONE64], vec!["no".into()]);
        let decoded = decode(result, input.clone(), &encoded.schemas, &PluginLimits::default()).unwrap_or_else(|(e, _)| panic!("{e}"));
        let failures: Vec<(FailureKind, String)> = decoded
            .into_iter()
            .map(|o| o.map(|_| ()).expect_err("every record fails"))
            .map(|f| (f.failure.kind, f.failure.message))
            .collect();
        assert_eq!(failures[0], (FailureKind::Rejected, "no".into()));
        assert_eq!(failures[1].0, FailureKind::BadOutput);
        assert!(failures[1].1.contains("before.i: value kind 12"), "{}", failures[1].1);
        assert_eq!(
            failures[2],
            (FailureKind::BadOutput, "outputs 1+5 lie outside the 1 returned".into())
        );

        let whole = |result, expected: &str| {
            let (message, back) = decode(result, input.clone(), &encoded.schemas, &PluginLimits::default())
                .map(|_| ())
                .expect_err("voided");
            assert_eq!((message.as_str(), back.len()), (expected, 3));
        };
        let empty = || encode(&[]).batch;
        whole(
            answer(empty(), vec![0, 0], vec![], vec![], vec![]),
            "returned 2 output counts for 3 records (exactly one per record is required)",
        );
        whole(
            answer(empty(), vec![0, 0, NONE32], vec![], vec![], vec![]),
            "returned 0 errors for 1 failed records",
        );
        whole(
            answer(empty(), vec![0, 0, 1], vec![NONE32], vec![], vec![]),
            "returned 0 destinations for 1 outputs (one per output is required)",
        );
    }
}
