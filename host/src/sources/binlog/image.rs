//! Row images read straight from a rows event with the column types,
//! metadata and signedness of the table map, worked out once per table map.
//! mysql_common's own row reader builds a column description per value and
//! walks the table map's metadata again for every row: more than half of
//! the binlog source's CPU in profiles. Events it reads differently (some
//! columns left out of an image, partial JSON updates) still go through it.
use mysql_async::Column as WireColumn;
use mysql_async::binlog::events::{RowsEventData, TableMapEvent};
use mysql_async::binlog::value::BinlogValue;
use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_common::io::ParseBuf;

pub struct ImageLayout {
    /// Per column: type, metadata bytes, unsigned.
    columns: Vec<(ColumnType, Vec<u8>, bool)>,
}

/// A row's before and after images.
pub type Images<T> = (Option<Vec<T>>, Option<Vec<T>>);

impl ImageLayout {
    pub fn new(map: &TableMapEvent<'_>, columns: &[WireColumn]) -> Self {
        let columns = columns
            .iter()
            .enumerate()
            .map(|(c, col)| {
                let meta = map.get_column_metadata(c).unwrap_or(&[]).to_vec();
                (col.column_type(), meta, col.flags().contains(ColumnFlags::UNSIGNED_FLAG))
            })
            .collect();
        ImageLayout { columns }
    }

    /// Every column is in each image and none is a partial JSON update.
    pub fn fits(&self, rows: &RowsEventData<'_>) -> bool {
        let n = self.columns.len();
        rows.num_columns() == n as u64
            && !matches!(rows, RowsEventData::PartialUpdateRowsEvent(_))
            && [rows.columns_before_image(), rows.columns_after_image()].into_iter().flatten().all(|present| present.count_ones() == n)
    }

    /// The images of every row of `rows` (which `fits`), each value turned
    /// into a `T` by `decode(column, value)`; None is SQL NULL.
    pub fn read<'a, T>(
        &'a self,
        rows: &'a RowsEventData<'_>,
        decode: impl Fn(usize, Option<BinlogValue<'_>>) -> Result<T, String>,
    ) -> Result<Vec<Images<T>>, String> {
        let (has_before, has_after) = (rows.columns_before_image().is_some(), rows.columns_after_image().is_some());
        // Values borrow the metadata and the event alike.
        let mut buf = ParseBuf(rows.rows_data());
        let mut out = Vec::new();
        while !buf.is_empty() {
            let before = if has_before { Some(self.image(&mut buf, &decode)?) } else { None };
            let after = if has_after { Some(self.image(&mut buf, &decode)?) } else { None };
            out.push((before, after));
        }
        Ok(out)
    }

    /// A null bitmap, then each non-null value in its column's wire form.
    fn image<'a, T>(&'a self, buf: &mut ParseBuf<'a>, decode: &impl Fn(usize, Option<BinlogValue<'_>>) -> Result<T, String>) -> Result<Vec<T>, String> {
        let nulls: &[u8] = buf.parse(self.columns.len().div_ceil(8)).map_err(|e| format!("row image: {e}"))?;
        let mut values = Vec::with_capacity(self.columns.len());
        for (c, (ty, meta, unsigned)) in self.columns.iter().enumerate() {
            if nulls[c / 8] & (1 << (c % 8)) != 0 {
                values.push(decode(c, None)?);
                continue;
            }
            let value: BinlogValue<'_> = buf.parse((*ty, meta.as_slice(), *unsigned, false)).map_err(|e| format!("row image: {e}"))?;
            values.push(decode(c, Some(value))?);
        }
        Ok(values)
    }
}
