//! MySQL column values into exact record values, from binlog row images and
//! from query results alike, so a snapshot row and the same row changed later
//! in the binlog carry identical values. The binlog gives the physical type,
//! signedness (with binlog_row_metadata=FULL), charset and fractional-second
//! digits; a result set gives the same in its column definitions.
use std::collections::VecDeque;

use mysql_async::binlog::events::{OptionalMetadataField, TableMapEvent};
use mysql_async::binlog::value::BinlogValue;
use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::{Column as WireColumn, Value as Wire};

use crate::record::{Column, Value};

/// Charset number of `binary`: such strings are bytes, not text.
const BINARY_CHARSET: u16 = 63;

/// How to read one column of a table.
#[derive(Debug, Clone)]
pub struct ColumnDecoder {
    ty: ColumnType,
    unsigned: bool,
    binary: bool,
    /// Fractional-second digits of DATETIME/TIME/TIMESTAMP.
    fsp: u8,
    /// Member names of an ENUM or SET column, in declaration order.
    members: Vec<String>,
    /// Query results carry ENUM and SET values as their names, the binlog as
    /// member numbers and bitmasks.
    members_as_text: bool,
    /// MariaDB's JSON is LONGTEXT with a json_valid() check: only the
    /// catalog tells it apart from text.
    json: bool,
}

/// Member names of the table's ENUM and SET columns, each list in column
/// order (from binlog_row_metadata=FULL).
pub struct Members {
    enums: VecDeque<Vec<String>>,
    sets: VecDeque<Vec<String>>,
}

impl Members {
    pub fn of(map: &TableMapEvent<'_>) -> Self {
        let mut members = Members { enums: VecDeque::new(), sets: VecDeque::new() };
        for field in map.iter_optional_meta().flatten() {
            match field {
                OptionalMetadataField::EnumStrValue(values) => members.enums.extend(
                    values.iter_values().flatten().map(|v| v.values().iter().map(|m| m.value().into_owned()).collect()),
                ),
                OptionalMetadataField::SetStrValue(values) => members.sets.extend(
                    values.iter_values().flatten().map(|v| v.values().iter().map(|m| m.value().into_owned()).collect()),
                ),
                _ => {}
            }
        }
        members
    }
}

impl ColumnDecoder {
    pub fn new(column: &WireColumn, meta: &[u8], members: &mut Members) -> Self {
        let ty = column.column_type();
        let temporal = matches!(ty, ColumnType::MYSQL_TYPE_DATETIME2 | ColumnType::MYSQL_TYPE_TIME2 | ColumnType::MYSQL_TYPE_TIMESTAMP2);
        let members = match ty {
            ColumnType::MYSQL_TYPE_ENUM => members.enums.pop_front().unwrap_or_default(),
            ColumnType::MYSQL_TYPE_SET => members.sets.pop_front().unwrap_or_default(),
            _ => Vec::new(),
        };
        ColumnDecoder {
            ty,
            unsigned: column.flags().contains(ColumnFlags::UNSIGNED_FLAG),
            binary: column.character_set() == BINARY_CHARSET,
            fsp: if temporal { meta.first().copied().unwrap_or(0).min(6) } else { 0 },
            members,
            members_as_text: false,
            json: false,
        }
    }

    /// For a column of a (binary protocol) query result.
    pub fn for_query(column: &WireColumn) -> Self {
        let flags = column.flags();
        let ty = if flags.contains(ColumnFlags::ENUM_FLAG) {
            ColumnType::MYSQL_TYPE_ENUM
        } else if flags.contains(ColumnFlags::SET_FLAG) {
            ColumnType::MYSQL_TYPE_SET
        } else {
            column.column_type()
        };
        let temporal = matches!(
            ty,
            ColumnType::MYSQL_TYPE_DATETIME | ColumnType::MYSQL_TYPE_TIME | ColumnType::MYSQL_TYPE_TIMESTAMP
        );
        ColumnDecoder {
            ty,
            unsigned: flags.contains(ColumnFlags::UNSIGNED_FLAG) && ty != ColumnType::MYSQL_TYPE_YEAR,
            binary: column.character_set() == BINARY_CHARSET,
            fsp: if temporal { column.decimals().min(6) } else { 0 },
            members: Vec::new(),
            members_as_text: true,
            json: false,
        }
    }

    /// Fills in what a table map without full metadata leaves out.
    pub fn complete_from_catalog(&mut self, unsigned: bool, members: &[String]) {
        self.unsigned |= unsigned;
        if self.members.is_empty() {
            self.members = members.to_vec();
        }
    }

    /// Marks a text column as JSON (MariaDB's JSON alias, found in the catalog).
    pub fn treat_as_json(&mut self) {
        if !self.binary && matches!(self.ty, ColumnType::MYSQL_TYPE_BLOB | ColumnType::MYSQL_TYPE_LONG_BLOB) {
            self.json = true;
        }
    }

    pub fn describe(&self, _column: &WireColumn, name: String) -> Column {
        Column { name, sql_type: self.sql_type() }
    }

    fn sql_type(&self) -> String {
        use ColumnType::*;
        let base = match self.ty {
            _ if self.json => "json",
            MYSQL_TYPE_TINY => "tinyint",
            MYSQL_TYPE_SHORT => "smallint",
            MYSQL_TYPE_INT24 => "mediumint",
            MYSQL_TYPE_LONG => "int",
            MYSQL_TYPE_LONGLONG => "bigint",
            MYSQL_TYPE_FLOAT => "float",
            MYSQL_TYPE_DOUBLE => "double",
            MYSQL_TYPE_NEWDECIMAL | MYSQL_TYPE_DECIMAL => "decimal",
            MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => "date",
            MYSQL_TYPE_DATETIME | MYSQL_TYPE_DATETIME2 => "datetime",
            MYSQL_TYPE_TIMESTAMP | MYSQL_TYPE_TIMESTAMP2 => "timestamp",
            MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2 => "time",
            MYSQL_TYPE_YEAR => "year",
            MYSQL_TYPE_BIT => "bit",
            MYSQL_TYPE_JSON => "json",
            MYSQL_TYPE_ENUM => "enum",
            MYSQL_TYPE_SET => "set",
            MYSQL_TYPE_GEOMETRY => "geometry",
            MYSQL_TYPE_BLOB | MYSQL_TYPE_TINY_BLOB | MYSQL_TYPE_MEDIUM_BLOB | MYSQL_TYPE_LONG_BLOB if self.binary => "blob",
            MYSQL_TYPE_BLOB | MYSQL_TYPE_TINY_BLOB | MYSQL_TYPE_MEDIUM_BLOB | MYSQL_TYPE_LONG_BLOB => "text",
            _ if self.binary => "varbinary",
            _ => "varchar",
        };
        if self.unsigned { format!("{base} unsigned") } else { base.to_owned() }
    }

    /// Takes the value: strings and decimals arrive as owned bytes, which
    /// become the record's text without another copy.
    pub fn decode(&self, value: Option<BinlogValue<'_>>) -> Result<Value, String> {
        match value {
            None => Ok(Value::Null),
            Some(BinlogValue::Value(v)) => self.decode_value(v),
            Some(BinlogValue::Jsonb(j)) => {
                let json = serde_json::Value::try_from(j).map_err(|e| format!("JSON column: {e}"))?;
                Ok(Value::Json(json.to_string()))
            }
            Some(BinlogValue::JsonDiff(_)) => Err("partial JSON update (set binlog_row_value_options='' on the server)".into()),
        }
    }

    pub fn decode_value(&self, wire: Wire) -> Result<Value, String> {
        use ColumnType::*;
        Ok(match (wire, self.ty) {
            (Wire::NULL, _) => Value::Null,
            (Wire::Bytes(b), _) if self.json => Value::Json(text(b)?),
            (Wire::Bytes(name), MYSQL_TYPE_ENUM | MYSQL_TYPE_SET) if self.members_as_text => Value::Str(text(name)?),
            // ENUM is stored as its 1-based member number (0: the invalid '').
            (Wire::Int(i), MYSQL_TYPE_ENUM) => Value::Str(match usize::try_from(i - 1).ok().and_then(|m| self.members.get(m)) {
                Some(name) => name.clone(),
                None => String::new(),
            }),
            // SET is a little-endian bitmask of members.
            (Wire::Bytes(mask), MYSQL_TYPE_SET) => Value::Str(
                self.members
                    .iter()
                    .enumerate()
                    .filter(|(bit, _)| mask.get(bit / 8).is_some_and(|byte| byte & (1 << (bit % 8)) != 0))
                    .map(|(_, name)| name.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            (Wire::Int(i), MYSQL_TYPE_YEAR) => Value::Int(i),
            // mysql_common reads a binlog MEDIUMINT as 24 unsigned bits.
            (Wire::Int(i), MYSQL_TYPE_INT24) if !self.unsigned => Value::Int((i << 40) >> 40),
            (Wire::Int(i), _) if self.unsigned => Value::Uint(self.as_unsigned(i)),
            (Wire::Int(i), _) => Value::Int(i),
            (Wire::UInt(u), _) => Value::Uint(u),
            (Wire::Float(f), _) => Value::Float(f64::from(f)),
            (Wire::Double(d), _) => Value::Float(d),
            (Wire::Bytes(b), MYSQL_TYPE_NEWDECIMAL | MYSQL_TYPE_DECIMAL) => Value::Decimal(text(b)?),
            (Wire::Bytes(b), MYSQL_TYPE_YEAR) => Value::Int(text(b)?.parse().map_err(|e| format!("YEAR: {e}"))?),
            (Wire::Bytes(b), MYSQL_TYPE_TIMESTAMP2 | MYSQL_TYPE_TIMESTAMP) => Value::Timestamp(timestamp_micros(&text(b)?)?),
            (Wire::Bytes(b), MYSQL_TYPE_BIT | MYSQL_TYPE_GEOMETRY) => Value::Bytes(b),
            (Wire::Bytes(b), MYSQL_TYPE_JSON) => Value::Json(text(b)?),
            (Wire::Bytes(b), _) if self.binary => Value::Bytes(b),
            (Wire::Bytes(b), _) => Value::Str(text(b)?),
            // A query result's TIMESTAMP is in the session time zone, which the
            // readers set to UTC.
            (Wire::Date(y, mo, d, h, mi, s, us), MYSQL_TYPE_TIMESTAMP | MYSQL_TYPE_TIMESTAMP2) => {
                Value::Timestamp(utc_micros(y, mo, d, h, mi, s, us)?)
            }
            (Wire::Date(y, m, d, 0, 0, 0, 0), MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE) => {
                let mut date = String::with_capacity(10);
                push_date(&mut date, y, m, d);
                Value::Date(date)
            }
            (Wire::Date(y, mo, d, h, mi, s, us), _) => {
                let mut datetime = String::with_capacity(27);
                push_date(&mut datetime, y, mo, d);
                datetime.push(' ');
                push_digits(&mut datetime, h.into(), 2);
                self.push_clock(&mut datetime, mi, s, us);
                Value::Datetime(datetime)
            }
            (Wire::Time(neg, days, h, m, s, us), _) => {
                let mut time = String::with_capacity(18);
                if neg {
                    time.push('-');
                }
                let hours = days * 24 + u32::from(h);
                push_digits(&mut time, hours, if hours > 99 { hours.ilog10() as usize + 1 } else { 2 });
                self.push_clock(&mut time, m, s, us);
                Value::Time(time)
            }
        })
    }

    /// The binlog stores unsigned integers in the column's width; a value
    /// read as signed is reinterpreted in that width.
    fn as_unsigned(&self, i: i64) -> u64 {
        let bits = match self.ty {
            ColumnType::MYSQL_TYPE_TINY => 8,
            ColumnType::MYSQL_TYPE_SHORT => 16,
            ColumnType::MYSQL_TYPE_INT24 => 24,
            ColumnType::MYSQL_TYPE_LONG => 32,
            _ => 64,
        };
        if bits == 64 { i as u64 } else { (i as u64) & ((1u64 << bits) - 1) }
    }

    /// ":MM:SS" and the first `fsp` of six zero-padded fraction digits.
    fn push_clock(&self, out: &mut String, minutes: u8, seconds: u8, micros: u32) {
        out.push(':');
        push_digits(out, minutes.into(), 2);
        out.push(':');
        push_digits(out, seconds.into(), 2);
        if self.fsp > 0 {
            out.push('.');
            push_digits(out, micros / 10u32.pow(6 - u32::from(self.fsp)), self.fsp.into());
        }
    }
}

/// "YYYY-MM-DD"; MySQL's zero dates stay zero.
fn push_date(out: &mut String, year: u16, month: u8, day: u8) {
    push_digits(out, year.into(), 4);
    out.push('-');
    push_digits(out, month.into(), 2);
    out.push('-');
    push_digits(out, day.into(), 2);
}

/// The last `width` decimal digits of `n`, zero-padded: temporal values are
/// written per row, and `format!` with padding cost more than the rest of
/// their decoding.
fn push_digits(out: &mut String, mut n: u32, width: usize) {
    let mut digits = [b'0'; 10];
    for d in digits[..width].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.push_str(std::str::from_utf8(&digits[..width]).expect("ASCII digits"));
}

fn text(bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|e| format!("text column is not UTF-8: {e}"))
}

fn utc_micros(y: u16, mo: u8, d: u8, h: u8, mi: u8, s: u8, us: u32) -> Result<i64, String> {
    // MySQL's zero TIMESTAMP is the epoch, as the binlog stores it.
    if y == 0 {
        return Ok(0);
    }
    chrono::NaiveDate::from_ymd_opt(y.into(), mo.into(), d.into())
        .and_then(|date| date.and_hms_micro_opt(h.into(), mi.into(), s.into(), us))
        .map(|t| t.and_utc().timestamp_micros())
        .ok_or_else(|| format!("TIMESTAMP {y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06} is not a valid time"))
}

/// TIMESTAMP arrives as "seconds[.fraction]" since the epoch, in UTC.
fn timestamp_micros(text: &str) -> Result<i64, String> {
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let secs: i64 = secs.parse().map_err(|e| format!("TIMESTAMP {text:?}: {e}"))?;
    let micros: i64 = if frac.is_empty() { 0 } else { format!("{frac:0<6}")[..6].parse().map_err(|e| format!("TIMESTAMP {text:?}: {e}"))? };
    Ok(secs * 1_000_000 + micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_mediumint_is_sign_extended() {
        let column = WireColumn::new(ColumnType::MYSQL_TYPE_INT24);
        let decoder = ColumnDecoder::for_query(&column);
        assert_eq!(decoder.decode_value(Wire::Int(16727217)), Ok(Value::Int(-49999)));
        assert_eq!(decoder.decode_value(Wire::Int(-49999)), Ok(Value::Int(-49999)));
        assert_eq!(decoder.decode_value(Wire::Int(8388607)), Ok(Value::Int(8388607)));
    }

    #[test]
    fn temporal_values_are_written_as_mysql_prints_them() {
        let decoder = |ty, decimals| ColumnDecoder::for_query(&WireColumn::new(ty).with_decimals(decimals));
        let datetime = decoder(ColumnType::MYSQL_TYPE_DATETIME, 6);
        assert_eq!(datetime.decode_value(Wire::Date(2026, 1, 2, 3, 4, 5, 60)), Ok(Value::Datetime("2026-01-02 03:04:05.000060".into())));
        let datetime = decoder(ColumnType::MYSQL_TYPE_DATETIME, 2);
        assert_eq!(datetime.decode_value(Wire::Date(0, 0, 0, 0, 0, 0, 0)), Ok(Value::Datetime("0000-00-00 00:00:00.00".into())));
        assert_eq!(datetime.decode_value(Wire::Date(999, 12, 31, 23, 59, 59, 990_000)), Ok(Value::Datetime("0999-12-31 23:59:59.99".into())));
        let date = decoder(ColumnType::MYSQL_TYPE_DATE, 0);
        assert_eq!(date.decode_value(Wire::Date(2026, 11, 27, 0, 0, 0, 0)), Ok(Value::Date("2026-11-27".into())));
        let time = decoder(ColumnType::MYSQL_TYPE_TIME, 3);
        assert_eq!(time.decode_value(Wire::Time(true, 34, 22, 59, 59, 123_456)), Ok(Value::Time("-838:59:59.123".into())));
        assert_eq!(time.decode_value(Wire::Time(false, 0, 7, 0, 1, 0)), Ok(Value::Time("07:00:01.000".into())));
        let time = decoder(ColumnType::MYSQL_TYPE_TIME, 0);
        assert_eq!(time.decode_value(Wire::Time(false, 4, 4, 0, 0, 0)), Ok(Value::Time("100:00:00".into())));
    }

    #[test]
    fn timestamps_keep_their_fraction() {
        assert_eq!(timestamp_micros("1700000000").unwrap(), 1_700_000_000_000_000);
        assert_eq!(timestamp_micros("1700000000.5").unwrap(), 1_700_000_000_500_000);
        assert_eq!(timestamp_micros("1700000000.000001").unwrap(), 1_700_000_000_000_001);
    }
}
