//! How to read one table's row events: column decoders and the record
//! schema, from the table map and its optional metadata (names, signedness,
//! collations, the primary key in key order, ENUM and SET members),
//! completed from the catalog where the binlog leaves things out
//! (binlog_row_metadata below FULL, MariaDB's JSON, INET6 and UUID).
use std::sync::Arc;

use mysql_async::binlog::events::{OptionalMetaExtractor, OptionalMetadataField, TableMapEvent};
use mysql_async::consts::ColumnType;

use crate::mysql::catalog::CatalogColumns;
use crate::mysql::charset::Charsets;
use crate::mysql::decode::{ColumnDecoder, Members, SpecialType};
use crate::mysql::flavor::ServerFlavor;
use crate::record::Schema;

pub struct TableShape {
    pub schema: Arc<Schema>,
    pub decoders: Vec<ColumnDecoder>,
    /// Per column, how its collation compares text (None: byte for byte).
    pub folds: Vec<Option<Fold>>,
}

/// What a text column's collation ignores when it compares.
#[derive(Debug, Clone, Copy)]
pub struct Fold {
    pub case: bool,
    pub trailing_spaces: bool,
}

impl TableShape {
    /// `catalog` describes the table as it is now: it names the columns
    /// the table map leaves unnamed only while their counts agree, and
    /// otherwise speaks of columns by name.
    pub fn build(
        map: &TableMapEvent<'_>,
        catalog: Option<&CatalogColumns>,
        charsets: &Charsets,
        flavor: ServerFlavor,
    ) -> Result<Self, String> {
        let (database, table) = (map.database_name(), map.table_name());
        let count = map.columns_count() as usize;
        let meta = OptionalMetaExtractor::new(map.iter_optional_meta()).map_err(|e| format!("table map metadata: {e}"))?;
        let names_in_map: Vec<String> = meta
            .iter_column_name()
            .map(|n| n.map(|n| n.name().into_owned()))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let positional = catalog.filter(|c| c.names.len() == count);
        let names = match (names_in_map.len() == count, positional) {
            (true, _) => names_in_map,
            (false, Some(catalog)) => catalog.names.clone(),
            (false, None) => {
                return Err(format!(
                    "the row event has {count} columns but {database}.{table} now has a different number; without \
                     binlog_row_metadata=FULL the names cannot be known — SET GLOBAL binlog_row_metadata = 'FULL'"
                ));
            }
        };
        // What the catalog says of a column, by name where the table map named it.
        let in_catalog = |c: usize| catalog.and_then(|cat| cat.names.iter().position(|n| *n == names[c]));
        let mut signedness = meta.iter_signedness();
        let mut text_collations = meta.iter_charset();
        let mut member_collations = meta.iter_enum_and_set_charset();
        let mut members = Members::of(map);
        let mut decoders = Vec::with_capacity(count);
        let mut folds = Vec::with_capacity(count);
        for (c, name) in names.iter().enumerate() {
            let ty = map
                .get_column_type(c)
                .map_err(|e| format!("column `{name}`: {e}"))?
                .ok_or_else(|| format!("column `{name}`: no type in the table map"))?;
            let unsigned = ty.is_numeric_type() && signedness.next().unwrap_or(false);
            // MariaDB counts GEOMETRY (a BLOB underneath) among the columns
            // with a character set; MySQL does not.
            let has_charset = ty.is_character_type() || (flavor == ServerFlavor::MariaDb && ty == ColumnType::MYSQL_TYPE_GEOMETRY);
            let collation = if has_charset {
                text_collations.next()
            } else if ty.is_enum_or_set_type() {
                member_collations.next()
            } else {
                None
            };
            let catalog_column = in_catalog(c).and_then(|i| catalog.map(|cat| (cat, i)));
            let collation = collation.transpose().map_err(|e| format!("column `{name}`: {e}"))?;
            folds.push(
                collation
                    .and_then(|id| charsets.collation(id))
                    .filter(|_| is_text(ty))
                    .map(|c| Fold {
                        case: c.folds_case(),
                        trailing_spaces: c.pads(),
                    }),
            );
            let text = match (collation, catalog_column) {
                (Some(id), _) => charsets.by_collation(id),
                (None, Some((cat, i))) => cat.charsets[i].as_deref().map_or(Ok(None), |name| charsets.by_name(name)),
                (None, None) => Ok(None),
            }
            .map_err(|e| format!("column `{}`: {e}", name))?;
            let mut decoder = ColumnDecoder::for_binlog(ty, map.get_column_metadata(c).unwrap_or(&[]), unsigned, text, members.next(ty))
                .map_err(|e| format!("column `{}`: {e}", name))?;
            if let Some((cat, i)) = catalog_column {
                decoder.complete_from_catalog(cat.unsigned[i], &cat.members[i]);
                if cat.json.contains(name) {
                    decoder.treat_as_json();
                }
                if let Some(special) = SpecialType::of(&cat.data_types[i]) {
                    decoder.treat_as(special);
                }
                decoder.zero_fill(&cat.column_types[i]);
            }
            decoders.push(decoder);
        }
        let key_in_map: Vec<u32> = meta
            .iter_primary_key()
            .map(|k| k.map(|k| k as u32))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let key = match (key_in_map.is_empty(), catalog) {
            (false, _) | (true, None) => key_in_map,
            (true, Some(catalog)) => catalog
                .key
                .iter()
                .filter_map(|k| names.iter().position(|n| n == k))
                .map(|i| i as u32)
                .collect(),
        };
        let schema = Schema {
            database: database.into_owned(),
            table: table.into_owned(),
            columns: decoders.iter().zip(names).map(|(d, name)| d.describe(name)).collect(),
            key,
        };
        Ok(TableShape {
            folds,
            schema: Arc::new(schema),
            decoders,
        })
    }
}

/// Every collation number a table map's metadata names.
pub fn collation_ids(map: &TableMapEvent<'_>) -> Vec<u16> {
    let mut ids = Vec::new();
    for field in map.iter_optional_meta().flatten() {
        match field {
            OptionalMetadataField::DefaultCharset(d) | OptionalMetadataField::EnumAndSetDefaultCharset(d) => {
                ids.push(d.default_charset());
                ids.extend(d.iter_non_default().flatten().map(|c| c.charset()));
            }
            OptionalMetadataField::ColumnCharset(c) | OptionalMetadataField::EnumAndSetColumnCharset(c) => {
                ids.extend(c.iter_charsets().flatten());
            }
            _ => {}
        }
    }
    ids
}

/// Text a collation compares (character, not binary, columns).
fn is_text(ty: ColumnType) -> bool {
    matches!(
        ty,
        ColumnType::MYSQL_TYPE_STRING | ColumnType::MYSQL_TYPE_VAR_STRING | ColumnType::MYSQL_TYPE_VARCHAR | ColumnType::MYSQL_TYPE_BLOB
    )
}
