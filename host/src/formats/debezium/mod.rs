//! The Debezium-style JSON envelope (`before`, `after`, `source`, `op`,
//! `ts_ms`) and the flat row, as the Kafka sink writes them and the Kafka
//! source reads them, with Sluice's headers.
mod decode;
mod encode;

pub use self::decode::{EnvelopeDecoder, Message, MessageFormat};
pub use self::encode::{DEDUP_HEADER, KeyWriter, MessageEncoder, POSITION_HEADER, ValueFormat, headers, position_text};

#[cfg(test)]
mod round_trip {
    use std::sync::Arc;

    use super::*;
    use crate::record::{Column, Op, Position, Record, Schema, Value};

    fn record(op: Op) -> Record {
        let column = |name: &str| Column {
            name: name.into(),
            sql_type: "x".into(),
        };
        let schema = Arc::new(Schema {
            database: "shop\"db".into(),
            table: "line\nitems".into(),
            columns: ["id", "name", "score", "note", "missing"].map(column).into(),
            key: vec![0],
        });
        let row = vec![
            Value::Int(-7),
            Value::Str("tab\there \"quoted\" \\ ünïcode \u{1} 😀".into()),
            Value::Float(1.5),
            Value::Str(String::new()),
            Value::Null,
        ];
        let position = Position::Kafka {
            topic: "t".into(),
            partition: 0,
            offset: 3,
        };
        let read = Record::read(position, 1_700_000_000_000, schema, row.clone());
        match op {
            Op::Delete => Record {
                op,
                before: Some(row),
                after: None,
                ..read
            },
            Op::Update => Record {
                op,
                before: Some(row.clone()),
                ..read
            },
            _ => Record { op, ..read },
        }
    }

    /// What the sink writes for `record`, read back by the source.
    fn through_kafka(record: &Record, write: ValueFormat, read: MessageFormat) -> Result<Record, String> {
        let mut encoder = MessageEncoder::new(write, "p");
        let (mut key, mut value) = (Vec::new(), Vec::new());
        encoder.write_key(record, &mut key);
        let payload = encoder.write_value(record, 0, &mut value).then_some(value);
        let message = Message {
            topic: "shop.items",
            partition: 0,
            offset: 0,
            timestamp_ms: record.ts_ms,
            key: Some(&key),
            payload: payload.as_deref(),
        };
        EnvelopeDecoder::default().decode(read, &message).map_err(|(_, why)| why)
    }

    #[test]
    fn what_the_encoder_writes_the_decoder_reads_back_the_same() {
        for op in [Op::Insert, Op::Update, Op::Delete, Op::Read] {
            let sent = record(op);
            let got = through_kafka(&sent, ValueFormat::Debezium, MessageFormat::Debezium).unwrap_or_else(|why| panic!("{op:?}: {why}"));
            let schema = got.schema.as_ref().expect("a row");
            assert_eq!(
                (schema.database.as_str(), schema.table.as_str()),
                ("shop\"db", "line\nitems"),
                "{op:?}"
            );
            let names: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
            assert_eq!(names, ["id", "name", "score", "note", "missing"], "{op:?}");
            assert_eq!(got.before, sent.before, "{op:?}");
            assert_eq!(got.after, sent.after, "{op:?}");
        }
        let flat = through_kafka(&record(Op::Insert), ValueFormat::Flat, MessageFormat::Flat).unwrap_or_else(|why| panic!("{why}"));
        assert_eq!(flat.after, record(Op::Insert).after);
        let tombstone = through_kafka(&record(Op::Delete), ValueFormat::Flat, MessageFormat::Flat).unwrap_or_else(|why| panic!("{why}"));
        assert_eq!(tombstone.op, Op::Delete, "a flat tombstone reads back as the delete of its key");
    }
}
