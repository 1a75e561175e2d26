//! Row images read straight from a rows event with the decoders of its
//! table, worked out once per table map. A value that cannot become a
//! record value fails its row alone; an image that cannot be read on fails
//! the rest of the event. Either way the bytes go with the reason, for the
//! dead-letter queue.
use mysql_async::binlog::events::RowsEventData;
use mysql_common::io::ParseBuf;

use crate::mysql::decode::ColumnDecoder;
use crate::record::{Schema, Value};

/// A row's before and after images.
pub type Images = (Option<Vec<Value>>, Option<Vec<Value>>);

/// A row (or the rest of an event) that cannot be read, and its bytes.
#[derive(Debug)]
pub struct Unreadable {
    pub reason: String,
    pub bytes: Vec<u8>,
}

/// Every row of `rows`, in order.
pub fn read_rows(rows: &RowsEventData<'_>, schema: &Schema, decoders: &[ColumnDecoder]) -> Vec<Result<Images, Unreadable>> {
    let data = rows.rows_data();
    let whole = |reason: String| {
        vec![Err(Unreadable {
            reason,
            bytes: data.to_vec(),
        })]
    };
    if rows.num_columns() != decoders.len() as u64 {
        return whole(format!(
            "the rows event has {} columns, its table map {}",
            rows.num_columns(),
            decoders.len()
        ));
    }
    if matches!(rows, RowsEventData::PartialUpdateRowsEvent(_)) {
        return whole("a partial JSON update: SET GLOBAL binlog_row_value_options = '' on the server".into());
    }
    for present in [rows.columns_before_image(), rows.columns_after_image()].into_iter().flatten() {
        if let Some(missing) = (0..decoders.len()).find(|&c| !present.get(c).is_some_and(|bit| *bit)) {
            let name = schema.columns.get(missing).map_or("?", |c| c.name.as_str());
            return whole(format!(
                "the row image leaves out column `{name}`: SET GLOBAL binlog_row_image = 'FULL' on the server"
            ));
        }
    }
    let (has_before, has_after) = (rows.columns_before_image().is_some(), rows.columns_after_image().is_some());
    let mut buf = ParseBuf(data);
    let mut out = Vec::new();
    while !buf.is_empty() {
        let start = data.len() - buf.len();
        let images = (|| {
            let before = if has_before {
                Some(image(&mut buf, schema, decoders)?)
            } else {
                None
            };
            let after = if has_after {
                Some(image(&mut buf, schema, decoders)?)
            } else {
                None
            };
            Ok::<_, std::io::Error>((before, after))
        })();
        let bytes = || data[start..data.len() - buf.len()].to_vec();
        match images {
            Ok((before, after)) => out.push(match (before.transpose(), after.transpose()) {
                (Ok(before), Ok(after)) => Ok((before, after)),
                (Err(reason), _) | (_, Err(reason)) => Err(Unreadable { reason, bytes: bytes() }),
            }),
            Err(e) => {
                out.push(Err(Unreadable {
                    reason: format!("row image: {e}"),
                    bytes: data[start..].to_vec(),
                }));
                break;
            }
        }
    }
    out
}

/// A null bitmap, then each non-null value in its column's wire form; the
/// first value that cannot be decoded fails the image, once all of its
/// bytes are read.
fn image<'a>(buf: &mut ParseBuf<'a>, schema: &Schema, decoders: &'a [ColumnDecoder]) -> std::io::Result<Result<Vec<Value>, String>> {
    let nulls: &[u8] = buf.parse(decoders.len().div_ceil(8))?;
    let mut values = Vec::with_capacity(decoders.len());
    let mut failed = None;
    for (c, decoder) in decoders.iter().enumerate() {
        if nulls[c / 8] & (1 << (c % 8)) != 0 {
            values.push(Value::Null);
            continue;
        }
        match decoder.read(buf)? {
            Ok(value) => values.push(value),
            Err(reason) => {
                let name = schema.columns.get(c).map_or("?", |c| c.name.as_str());
                failed.get_or_insert_with(|| format!("column `{name}`: {reason}"));
                values.push(Value::Null);
            }
        }
    }
    Ok(match failed {
        Some(reason) => Err(reason),
        None => Ok(values),
    })
}
