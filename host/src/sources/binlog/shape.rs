//! How to read one table's row events: column decoders and the record
//! schema, from the table map, completed from the catalog where the binlog
//! leaves things out (binlog_row_metadata below FULL, MariaDB's JSON).
use std::sync::Arc;

use mysql_async::Column as WireColumn;
use mysql_async::binlog::events::TableMapEvent;
use mysql_async::consts::ColumnFlags;

use super::image::ImageLayout;
use crate::record::Schema;
use crate::sources::catalog::CatalogColumns;
use crate::sources::decode::{ColumnDecoder, Members};

pub struct TableShape {
    pub schema: Arc<Schema>,
    pub decoders: Vec<ColumnDecoder>,
    pub layout: ImageLayout,
}

impl TableShape {
    /// `full`: the table map carries names, keys, signedness and members.
    pub fn build(
        database: &str,
        table: &str,
        map: &TableMapEvent<'_>,
        columns: &[WireColumn],
        catalog: Option<&CatalogColumns>,
        full: bool,
    ) -> Result<Self, String> {
        let mut members = Members::of(map);
        let mut decoders: Vec<ColumnDecoder> = columns
            .iter()
            .enumerate()
            .map(|(c, col)| ColumnDecoder::new(col, map.get_column_metadata(c).unwrap_or(&[]), &mut members))
            .collect();
        let mut names: Vec<String> = columns.iter().map(|c| c.name_str().into_owned()).collect();
        let mut key: Vec<u32> = columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.flags().contains(ColumnFlags::PRI_KEY_FLAG))
            .map(|(c, _)| c as u32)
            .collect();
        if let Some(catalog) = catalog {
            if !full {
                // The catalog describes the table as it is now; it only fits
                // events written since its last ALTER.
                if catalog.names.len() != columns.len() {
                    return Err(format!(
                        "the row event has {} columns but {database}.{table} now has {}; without binlog_row_metadata=FULL \
                         the names cannot be known — SET GLOBAL binlog_row_metadata = 'FULL'",
                        columns.len(),
                        catalog.names.len()
                    ));
                }
                for (c, decoder) in decoders.iter_mut().enumerate() {
                    decoder.complete_from_catalog(catalog.unsigned[c], &catalog.members[c]);
                }
                names = catalog.names.clone();
                key = catalog.key.iter().filter_map(|k| names.iter().position(|n| n == k)).map(|i| i as u32).collect();
            }
            for (name, decoder) in names.iter().zip(&mut decoders) {
                if catalog.json.contains(name) {
                    decoder.treat_as_json();
                }
            }
        }
        let schema = Schema {
            database: database.to_owned(),
            table: table.to_owned(),
            columns: columns.iter().zip(&decoders).zip(names).map(|((col, d), name)| d.describe(col, name)).collect(),
            key,
        };
        Ok(TableShape { schema: Arc::new(schema), decoders, layout: ImageLayout::new(map, columns) })
    }
}
