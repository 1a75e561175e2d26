//! MySQL column values into exact record values, from binlog row images and
//! from query results alike, so a snapshot row and the same row changed later
//! in the binlog carry identical values. The binlog gives the physical type,
//! its metadata, signedness and collation (with binlog_row_metadata=FULL); a
//! result set gives the same in its column definitions, with text already
//! converted to the connection's utf8mb4.
//!
//! A few binlog forms are read here rather than by mysql_common, which hands
//! them over differently from what a query returns: `BINARY(n)` without its
//! trailing zero bytes, `YEAR` 0 as 1900, and negative `TIME(1)`/`TIME(2)`
//! with a fraction through an unsigned underflow.
use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use mysql_async::binlog::events::{OptionalMetadataField, TableMapEvent};
use mysql_async::binlog::value::BinlogValue;
use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::{Column as WireColumn, Value as Wire};
use mysql_common::io::ParseBuf;

use super::charset::{BINARY_COLLATION, TextCodec};
use crate::record::{Column, Value};

/// How to read one column of a table.
#[derive(Debug, Clone)]
pub struct ColumnDecoder {
    ty: ColumnType,
    unsigned: bool,
    /// How the column's bytes become text; None for binary strings and
    /// types that are not text.
    text: Option<Arc<TextCodec>>,
    /// The table map's metadata for the column (binlog only).
    meta: Box<[u8]>,
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
    /// A DECIMAL … ZEROFILL's width: a query returns it padded with zeros
    /// to this many characters, the binlog without them.
    zerofill: Option<usize>,
    /// `BINARY(n)`: the binlog leaves out trailing zero bytes, which a query
    /// returns; the length to pad to.
    binary_len: usize,
    /// A MariaDB type that the binlog stores as bytes and a query returns
    /// as text.
    special: Option<SpecialType>,
}

/// MariaDB's own types, stored as `BINARY(4)` and `BINARY(16)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialType {
    Inet4,
    Inet6,
    Uuid,
}

impl SpecialType {
    /// From information_schema's DATA_TYPE.
    pub fn of(data_type: &str) -> Option<Self> {
        match data_type {
            "inet4" => Some(SpecialType::Inet4),
            "inet6" => Some(SpecialType::Inet6),
            "uuid" => Some(SpecialType::Uuid),
            _ => None,
        }
    }
}

/// Member names of the table's ENUM and SET columns, each list in column
/// order (from binlog_row_metadata=FULL), as the bytes of their charset.
pub struct Members {
    enums: VecDeque<Vec<Vec<u8>>>,
    sets: VecDeque<Vec<Vec<u8>>>,
}

impl Members {
    pub fn of(map: &TableMapEvent<'_>) -> Self {
        let mut members = Members {
            enums: VecDeque::new(),
            sets: VecDeque::new(),
        };
        for field in map.iter_optional_meta().flatten() {
            match field {
                OptionalMetadataField::EnumStrValue(values) => members.enums.extend(
                    values
                        .iter_values()
                        .flatten()
                        .map(|v| v.values().iter().map(|m| m.value_raw().to_vec()).collect()),
                ),
                OptionalMetadataField::SetStrValue(values) => members.sets.extend(
                    values
                        .iter_values()
                        .flatten()
                        .map(|v| v.values().iter().map(|m| m.value_raw().to_vec()).collect()),
                ),
                _ => {}
            }
        }
        members
    }

    /// The next ENUM's or SET's members, for a column of type `ty`.
    pub fn next(&mut self, ty: ColumnType) -> Vec<Vec<u8>> {
        match ty {
            ColumnType::MYSQL_TYPE_ENUM => self.enums.pop_front().unwrap_or_default(),
            ColumnType::MYSQL_TYPE_SET => self.sets.pop_front().unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

impl ColumnDecoder {
    /// For a column of a binlog table map: its real type, metadata,
    /// signedness, text codec (None: bytes) and ENUM/SET members in their
    /// charset's bytes.
    pub fn for_binlog(
        ty: ColumnType,
        meta: &[u8],
        unsigned: bool,
        text: Option<Arc<TextCodec>>,
        members: Vec<Vec<u8>>,
    ) -> Result<Self, String> {
        let temporal = matches!(
            ty,
            ColumnType::MYSQL_TYPE_DATETIME2 | ColumnType::MYSQL_TYPE_TIME2 | ColumnType::MYSQL_TYPE_TIMESTAMP2
        );
        let codec = text.clone().unwrap_or_else(TextCodec::utf8);
        let members = members.into_iter().map(|m| codec.decode(m)).collect::<Result<_, _>>()?;
        let binary_len = match (ty, &text, meta) {
            (ColumnType::MYSQL_TYPE_STRING, None, [byte0, byte1, ..]) => fixed_string_len(*byte0, *byte1),
            _ => 0,
        };
        // A text type keeps its codec; others are not text at all.
        let text = if is_text_type(ty) { text } else { None };
        Ok(ColumnDecoder {
            ty,
            unsigned,
            text,
            meta: meta.into(),
            fsp: if temporal { meta.first().copied().unwrap_or(0).min(6) } else { 0 },
            members,
            members_as_text: false,
            json: false,
            zerofill: None,
            binary_len,
            special: None,
        })
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
        let text = (column.character_set() != BINARY_COLLATION && is_text_type(ty)).then(TextCodec::utf8);
        ColumnDecoder {
            ty,
            unsigned: flags.contains(ColumnFlags::UNSIGNED_FLAG) && ty != ColumnType::MYSQL_TYPE_YEAR,
            text,
            meta: Box::default(),
            fsp: if temporal { column.decimals().min(6) } else { 0 },
            members: Vec::new(),
            members_as_text: true,
            json: false,
            zerofill: None,
            binary_len: 0,
            special: None,
        }
    }

    /// Marks a column as one of MariaDB's INET6 or UUID (from the catalog):
    /// its bytes in the binlog become the text a query returns.
    pub fn treat_as(&mut self, special: SpecialType) {
        self.special = Some(special);
    }

    /// Fills in what a table map without full metadata leaves out.
    pub fn complete_from_catalog(&mut self, unsigned: bool, members: &[String]) {
        self.unsigned |= unsigned;
        if self.members.is_empty() {
            self.members = members.to_vec();
        }
    }

    /// Pads a DECIMAL declared ZEROFILL (its catalog COLUMN_TYPE) as a
    /// query returns it: `decimal(10,2) … zerofill` to 11 characters.
    pub fn zero_fill(&mut self, column_type: &str) {
        let Some(digits) = column_type.strip_prefix("decimal(").filter(|_| column_type.contains("zerofill")) else {
            return;
        };
        let (precision, scale) = digits
            .split_once(')')
            .map_or(digits, |(d, _)| d)
            .split_once(',')
            .unwrap_or((digits, "0"));
        if let (Ok(precision), Ok(scale)) = (precision.trim().parse::<usize>(), scale.trim().parse::<usize>()) {
            self.zerofill = Some(precision + usize::from(scale > 0));
        }
    }

    /// Marks a text column as JSON (MariaDB's JSON alias, found in the catalog).
    pub fn treat_as_json(&mut self) {
        if self.text.is_some() && matches!(self.ty, ColumnType::MYSQL_TYPE_BLOB | ColumnType::MYSQL_TYPE_LONG_BLOB) {
            self.json = true;
        }
    }

    pub fn describe(&self, name: String) -> Column {
        Column {
            name,
            sql_type: self.sql_type(),
        }
    }

    fn sql_type(&self) -> String {
        use ColumnType::*;
        let binary = self.text.is_none();
        let base = match self.ty {
            _ if self.json => "json",
            _ if self.special == Some(SpecialType::Inet4) => "inet4",
            _ if self.special == Some(SpecialType::Inet6) => "inet6",
            _ if self.special == Some(SpecialType::Uuid) => "uuid",
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
            MYSQL_TYPE_BLOB | MYSQL_TYPE_TINY_BLOB | MYSQL_TYPE_MEDIUM_BLOB | MYSQL_TYPE_LONG_BLOB if binary => "blob",
            MYSQL_TYPE_BLOB | MYSQL_TYPE_TINY_BLOB | MYSQL_TYPE_MEDIUM_BLOB | MYSQL_TYPE_LONG_BLOB => "text",
            _ if binary => "varbinary",
            _ => "varchar",
        };
        if self.unsigned {
            format!("{base} unsigned")
        } else {
            base.to_owned()
        }
    }

    /// Reads the column's next value from a binlog row image. The outer
    /// error means the image itself cannot be read on; the inner one, that
    /// this value cannot become a record value (its bytes are consumed).
    pub fn read<'a>(&'a self, buf: &mut ParseBuf<'a>) -> io::Result<Result<Value, String>> {
        use ColumnType::*;
        let wire = match self.ty {
            MYSQL_TYPE_TIME2 => time2(buf, self.fsp)?,
            MYSQL_TYPE_TIME => {
                // The pre-5.6 TIME: a signed HHMMSS.
                let raw: &[u8] = buf.parse(3)?;
                let n = i32::from_le_bytes([raw[0], raw[1], raw[2], if raw[2] & 0x80 != 0 { 0xff } else { 0 }]);
                let hhmmss = n.unsigned_abs();
                let hours = hhmmss / 10000;
                Wire::Time(
                    n < 0,
                    hours / 24,
                    (hours % 24) as u8,
                    (hhmmss / 100 % 100) as u8,
                    (hhmmss % 100) as u8,
                    0,
                )
            }
            // A byte: 0 is the year 0000, any other n is 1900 + n.
            MYSQL_TYPE_YEAR => {
                let year: &[u8] = buf.parse(1)?;
                return Ok(Ok(Value::Int(if year[0] == 0 { 0 } else { 1900 + i64::from(year[0]) })));
            }
            // The pre-5.6 TIMESTAMP: seconds since the epoch.
            MYSQL_TYPE_TIMESTAMP => {
                let secs: &[u8] = buf.parse(4)?;
                let secs = u32::from_le_bytes([secs[0], secs[1], secs[2], secs[3]]);
                return Ok(Ok(Value::Timestamp(i64::from(secs) * 1_000_000)));
            }
            _ => match buf.parse::<BinlogValue<'a>>((self.ty, &self.meta[..], self.unsigned, false))? {
                BinlogValue::Value(Wire::Bytes(mut bytes)) if self.binary_len > bytes.len() => {
                    bytes.resize(self.binary_len, 0);
                    Wire::Bytes(bytes)
                }
                BinlogValue::Value(wire) => wire,
                other => return Ok(self.decode(Some(other))),
            },
        };
        Ok(self.decode_value(wire))
    }

    /// A value of a row mysql_common read (partial JSON updates and
    /// values not read by [`ColumnDecoder::read`]).
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

    fn text(&self, bytes: Vec<u8>) -> Result<String, String> {
        self.text.as_deref().unwrap_or(&TextCodec::Utf8).decode(bytes)
    }

    pub fn decode_value(&self, wire: Wire) -> Result<Value, String> {
        use ColumnType::*;
        Ok(match (wire, self.ty) {
            (Wire::NULL, _) => Value::Null,
            (Wire::Bytes(b), _) if self.json => Value::Json(self.text(b)?),
            (Wire::Bytes(name), MYSQL_TYPE_ENUM | MYSQL_TYPE_SET) if self.members_as_text => Value::Str(self.text(name)?),
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
            (Wire::Float(f), _) => Value::Float(float_as_written(f)),
            (Wire::Double(d), _) => Value::Float(d),
            (Wire::Bytes(b), MYSQL_TYPE_NEWDECIMAL | MYSQL_TYPE_DECIMAL) if self.zerofill.is_some() => {
                let text = self.text(b)?;
                Value::Decimal(format!("{text:0>width$}", width = self.zerofill.unwrap_or(0)))
            }
            (Wire::Bytes(b), MYSQL_TYPE_NEWDECIMAL | MYSQL_TYPE_DECIMAL) => Value::Decimal(self.text(b)?),
            (Wire::Bytes(b), MYSQL_TYPE_YEAR) => Value::Int(self.text(b)?.parse().map_err(|e| format!("YEAR: {e}"))?),
            (Wire::Bytes(b), MYSQL_TYPE_TIMESTAMP2 | MYSQL_TYPE_TIMESTAMP) => Value::Timestamp(timestamp_micros(&self.text(b)?)?),
            (Wire::Bytes(b), MYSQL_TYPE_BIT | MYSQL_TYPE_GEOMETRY) => Value::Bytes(b),
            (Wire::Bytes(b), MYSQL_TYPE_JSON) => Value::Json(self.text(b)?),
            (Wire::Bytes(b), _) if self.text.is_none() => match (self.special, b.len()) {
                (Some(SpecialType::Inet4), 4) => Value::Str(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()),
                (Some(SpecialType::Inet6), 16) => Value::Str(inet6_text(b.try_into().expect("16 bytes"))),
                (Some(SpecialType::Uuid), 16) => Value::Str(uuid_text(b.try_into().expect("16 bytes"))),
                _ => Value::Bytes(b),
            },
            (Wire::Bytes(b), _) => Value::Str(self.text(b)?),
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

/// Types whose bytes are text in the column's character set.
fn is_text_type(ty: ColumnType) -> bool {
    use ColumnType::*;
    matches!(
        ty,
        MYSQL_TYPE_STRING
            | MYSQL_TYPE_VAR_STRING
            | MYSQL_TYPE_VARCHAR
            | MYSQL_TYPE_BLOB
            | MYSQL_TYPE_TINY_BLOB
            | MYSQL_TYPE_MEDIUM_BLOB
            | MYSQL_TYPE_LONG_BLOB
            | MYSQL_TYPE_ENUM
            | MYSQL_TYPE_SET
    )
}

/// The byte length of a `CHAR(n)`/`BINARY(n)` from its two metadata bytes
/// (lengths over 255 borrow two bits of the first, which holds the real type).
fn fixed_string_len(byte0: u8, byte1: u8) -> usize {
    let (byte0, byte1) = (usize::from(byte0), usize::from(byte1));
    if byte0 & 0x30 != 0x30 {
        byte1 | (((byte0 & 0x30) ^ 0x30) << 4)
    } else {
        byte1
    }
}

/// TIME(fsp) in the binlog's 5.6 form: a 24-bit big-endian integer part
/// (sign-flipped: 0x800000 is zero) of packed hours, minutes and seconds,
/// then 0-3 bytes of fraction. A negative time with a fraction stores its
/// integer part one lower and the fraction as its complement.
fn time2(buf: &mut ParseBuf<'_>, fsp: u8) -> io::Result<Wire> {
    const INT_OFFSET: i64 = 0x80_0000;
    let be = |bytes: &[u8]| bytes.iter().fold(0i64, |n, &b| (n << 8) | i64::from(b));
    // The value in microseconds, signed, with its packed clock in the integer part.
    let (mut int_part, mut frac) = match fsp {
        1 | 2 => {
            let raw: &[u8] = buf.parse(4)?;
            (be(&raw[..3]) - INT_OFFSET, be(&raw[3..]) * 10_000)
        }
        3 | 4 => {
            let raw: &[u8] = buf.parse(5)?;
            (be(&raw[..3]) - INT_OFFSET, be(&raw[3..]) * 100)
        }
        5 | 6 => {
            let raw: &[u8] = buf.parse(6)?;
            let packed = be(raw) - 0x8000_0000_0000;
            (packed >> 24, packed & 0xff_ffff)
        }
        _ => {
            let raw: &[u8] = buf.parse(3)?;
            (be(raw) - INT_OFFSET, 0)
        }
    };
    if matches!(fsp, 1..=4) && int_part < 0 && frac > 0 {
        int_part += 1;
        frac -= if fsp <= 2 { 0x100 * 10_000 } else { 0x1_0000 * 100 };
    }
    let packed = (int_part << 24) + frac;
    let (negative, magnitude) = (packed < 0, packed.unsigned_abs());
    let clock = magnitude >> 24;
    let hours = (clock >> 12) as u32 & 0x3ff;
    Ok(Wire::Time(
        negative,
        hours / 24,
        (hours % 24) as u8,
        (clock >> 6 & 0x3f) as u8,
        (clock & 0x3f) as u8,
        (magnitude & 0xff_ffff) as u32,
    ))
}

/// A FLOAT as the shortest decimal that reads back as the same FLOAT
/// (`0.1`, not the `0.10000000149011612` of its widening to double).
fn float_as_written(f: f32) -> f64 {
    // Rust writes a float as the shortest decimal that reads back the same.
    f.to_string().parse().unwrap_or(f64::from(f))
}

/// INET6 as MariaDB prints it: when the longest run of zero groups starts
/// the address and is six groups long (IPv4-compatible) or five followed by
/// `ffff` (IPv4-mapped), the last 32 bits are dotted; otherwise RFC 5952
/// (`::2`, `::ffff`, `::100` stay as they are).
fn inet6_text(bytes: [u8; 16]) -> String {
    let address = std::net::Ipv6Addr::from(bytes);
    let groups = address.segments();
    let leading_zeros = groups.iter().take_while(|&&g| g == 0).count();
    let v4 = std::net::Ipv4Addr::new(bytes[12], bytes[13], bytes[14], bytes[15]);
    match leading_zeros {
        6 => format!("::{v4}"),
        5 if groups[5] == 0xffff => format!("::ffff:{v4}"),
        _ => address.to_string(),
    }
}

/// UUID as MariaDB prints it. A UUID of versions 1-5 with the RFC variant
/// is stored with its segments swapped (time-ordered), others as written;
/// the stored bytes themselves say which.
fn uuid_text(stored: [u8; 16]) -> String {
    let swapped = (i32::from(stored[6] as i8) & -i32::from(stored[8] as i8) & 0x80) != 0;
    let bytes: [u8; 16] = if swapped {
        let mut b = [0; 16];
        b[0..4].copy_from_slice(&stored[12..16]);
        b[4..6].copy_from_slice(&stored[10..12]);
        b[6..8].copy_from_slice(&stored[8..10]);
        b[8..10].copy_from_slice(&stored[6..8]);
        b[10..16].copy_from_slice(&stored[0..6]);
        b
    } else {
        stored
    };
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
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
    let micros: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}")[..6].parse().map_err(|e| format!("TIMESTAMP {text:?}: {e}"))?
    };
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
        assert_eq!(
            datetime.decode_value(Wire::Date(2026, 1, 2, 3, 4, 5, 60)),
            Ok(Value::Datetime("2026-01-02 03:04:05.000060".into()))
        );
        let datetime = decoder(ColumnType::MYSQL_TYPE_DATETIME, 2);
        assert_eq!(
            datetime.decode_value(Wire::Date(0, 0, 0, 0, 0, 0, 0)),
            Ok(Value::Datetime("0000-00-00 00:00:00.00".into()))
        );
        assert_eq!(
            datetime.decode_value(Wire::Date(999, 12, 31, 23, 59, 59, 990_000)),
            Ok(Value::Datetime("0999-12-31 23:59:59.99".into()))
        );
        let date = decoder(ColumnType::MYSQL_TYPE_DATE, 0);
        assert_eq!(
            date.decode_value(Wire::Date(2026, 11, 27, 0, 0, 0, 0)),
            Ok(Value::Date("2026-11-27".into()))
        );
        let time = decoder(ColumnType::MYSQL_TYPE_TIME, 3);
        assert_eq!(
            time.decode_value(Wire::Time(true, 34, 22, 59, 59, 123_456)),
            Ok(Value::Time("-838:59:59.123".into()))
        );
        assert_eq!(
            time.decode_value(Wire::Time(false, 0, 7, 0, 1, 0)),
            Ok(Value::Time("07:00:01.000".into()))
        );
        let time = decoder(ColumnType::MYSQL_TYPE_TIME, 0);
        assert_eq!(
            time.decode_value(Wire::Time(false, 4, 4, 0, 0, 0)),
            Ok(Value::Time("100:00:00".into()))
        );
    }

    /// What the server writes for TIME(fsp) (my_time_packed_to_binary).
    fn time2_bytes(negative: bool, (h, m, s): (i64, i64, i64), micros: i64, fsp: u8) -> Vec<u8> {
        let mut packed = (((h << 12) | (m << 6) | s) << 24) + micros;
        if negative {
            packed = -packed;
        }
        let (int_part, frac) = (packed >> 24, packed % (1 << 24));
        let int_bytes = ((0x80_0000 + int_part) as u32).to_be_bytes()[1..].to_vec();
        match fsp {
            0 => int_bytes,
            1 | 2 => [int_bytes, vec![(frac / 10_000) as i8 as u8]].concat(),
            3 | 4 => [int_bytes, ((frac / 100) as i16).to_be_bytes().to_vec()].concat(),
            _ => ((packed + 0x8000_0000_0000) as u64).to_be_bytes()[2..].to_vec(),
        }
    }

    fn read(decoder: &ColumnDecoder, bytes: &[u8]) -> Value {
        let mut buf = ParseBuf(bytes);
        let value = decoder.read(&mut buf).expect("readable").expect("decodable");
        assert!(buf.is_empty(), "every byte read");
        value
    }

    #[test]
    fn binlog_time_reads_negative_fractions_at_every_precision() {
        let cases = [
            (false, (0, 0, 0), 500_000, "00:00:00.5"),
            (true, (0, 0, 0), 500_000, "-00:00:00.5"),
            (true, (0, 0, 1), 10_000, "-00:00:01.01"),
            (true, (838, 59, 59), 990_000, "-838:59:59.99"),
            (true, (12, 0, 0), 123_400, "-12:00:00.1234"),
            (true, (0, 0, 0), 1, "-00:00:00.000001"),
            (true, (1, 2, 3), 0, "-01:02:03"),
            (false, (838, 59, 59), 0, "838:59:59"),
        ];
        for (negative, clock, micros, expected) in cases {
            let fsp = expected.split_once('.').map_or(0, |(_, f)| f.len() as u8);
            for fsp in fsp..=6 {
                let decoder = ColumnDecoder::for_binlog(ColumnType::MYSQL_TYPE_TIME2, &[fsp], false, None, Vec::new()).unwrap();
                let text = read(&decoder, &time2_bytes(negative, clock, micros, fsp));
                let Value::Time(text) = text else { panic!("{text:?}") };
                let digits = usize::from(fsp.saturating_sub(expected.split_once('.').map_or(0, |(_, f)| f.len() as u8)));
                let padded = if expected.contains('.') || fsp == 0 {
                    format!("{expected}{}", "0".repeat(digits))
                } else {
                    format!("{expected}.{}", "0".repeat(digits))
                };
                assert_eq!(text, padded, "TIME({fsp})");
            }
        }
    }

    #[test]
    fn binlog_binary_keeps_its_trailing_zeros_and_year_zero_is_zero() {
        let binary = ColumnDecoder::for_binlog(ColumnType::MYSQL_TYPE_STRING, &[0xfe, 8], false, None, Vec::new()).unwrap();
        assert_eq!(read(&binary, &[2, 1, 2]), Value::Bytes(vec![1, 2, 0, 0, 0, 0, 0, 0]));
        assert_eq!(read(&binary, &[0]), Value::Bytes(vec![0; 8]));
        let text = ColumnDecoder::for_binlog(
            ColumnType::MYSQL_TYPE_STRING,
            &[0xfe, 8],
            false,
            Some(TextCodec::utf8()),
            Vec::new(),
        )
        .unwrap();
        assert_eq!(
            read(&text, &[2, b'a', b'b']),
            Value::Str("ab".into()),
            "CHAR is not padded, as a query returns it"
        );
        let year = ColumnDecoder::for_binlog(ColumnType::MYSQL_TYPE_YEAR, &[], true, None, Vec::new()).unwrap();
        assert_eq!(read(&year, &[0]), Value::Int(0));
        assert_eq!(read(&year, &[1]), Value::Int(1901));
        assert_eq!(read(&year, &[255]), Value::Int(2155));
    }

    #[test]
    fn mariadb_inet6_and_uuid_print_as_the_server_prints_them() {
        let mut inet6 = ColumnDecoder::for_binlog(ColumnType::MYSQL_TYPE_STRING, &[0xfe, 16], false, None, Vec::new()).unwrap();
        inet6.treat_as(SpecialType::Inet6);
        let mut loopback = vec![16];
        loopback.extend([0u8; 15]);
        loopback.push(1);
        assert_eq!(read(&inet6, &loopback), Value::Str("::1".into()));
        let mut mapped = vec![16];
        mapped.extend([0u8; 10]);
        mapped.extend([0xff, 0xff, 10, 0, 0, 1]);
        assert_eq!(read(&inet6, &mapped), Value::Str("::ffff:10.0.0.1".into()));
        let mut compatible = vec![16];
        compatible.extend([0u8; 12]);
        compatible.extend([10, 0, 0, 1]);
        assert_eq!(read(&inet6, &compatible), Value::Str("::10.0.0.1".into()));
        assert_eq!(
            read(&inet6, &[0]),
            Value::Str("::".into()),
            "all zeros: the binlog keeps no byte of it"
        );

        // 6ccd780c-baba-1026-9564-5b8c656024db, a version 1 UUID, is stored time-ordered.
        let stored = [
            0x5b, 0x8c, 0x65, 0x60, 0x24, 0xdb, 0x95, 0x64, 0x10, 0x26, 0xba, 0xba, 0x6c, 0xcd, 0x78, 0x0c,
        ];
        assert_eq!(uuid_text(stored), "6ccd780c-baba-1026-9564-5b8c656024db");
        let v4 = [
            0x44, 0x66, 0x55, 0x44, 0x00, 0x00, 0xa7, 0x16, 0x41, 0xd4, 0xe2, 0x9b, 0x55, 0x0e, 0x84, 0x00,
        ];
        assert_eq!(uuid_text(v4), "550e8400-e29b-41d4-a716-446655440000");
        // Version 7 is stored as written.
        let v7 = [
            0x01, 0x89, 0x0a, 0x5d, 0xac, 0x96, 0x77, 0x4b, 0xbc, 0xce, 0xb3, 0x02, 0x09, 0x9a, 0x80, 0x57,
        ];
        assert_eq!(uuid_text(v7), "01890a5d-ac96-774b-bcce-b302099a8057");
    }

    #[test]
    fn floats_are_the_shortest_decimal_of_their_single_precision() {
        let decoder = ColumnDecoder::for_query(&WireColumn::new(ColumnType::MYSQL_TYPE_FLOAT));
        assert_eq!(decoder.decode_value(Wire::Float(0.1)), Ok(Value::Float(0.1)));
        assert_eq!(decoder.decode_value(Wire::Float(-3.4028235e38)), Ok(Value::Float(-3.4028235e38)));
    }

    #[test]
    fn timestamps_keep_their_fraction() {
        assert_eq!(timestamp_micros("1700000000").unwrap(), 1_700_000_000_000_000);
        assert_eq!(timestamp_micros("1700000000.5").unwrap(), 1_700_000_000_500_000);
        assert_eq!(timestamp_micros("1700000000.000001").unwrap(), 1_700_000_000_000_001);
    }
}
