//! Text in any of the server's character sets, as Unicode. The binlog
//! carries a text column's bytes in the column's own character set (a
//! query result arrives already converted to the connection's utf8mb4), so
//! each column's collation, from the table map or the catalog, picks how its
//! bytes become text: the same text as `CONVERT(col USING utf8mb4)`.
//!
//! Single-byte character sets are mapped by the server itself, one query for
//! all of them, so every byte means exactly what it means to the server
//! (MySQL's `latin1` is not ISO 8859-1, its `dec8` or `keybcs2` are in no
//! encoding library). Multi-byte ones go through `encoding_rs`.
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use encoding_rs::Encoding;
use mysql_async::Conn;
use mysql_async::prelude::Queryable;

/// Collation number of `binary`: such strings are bytes, not text.
pub const BINARY_COLLATION: u16 = 63;

#[derive(Debug)]
pub enum TextCodec {
    Utf8,
    /// The character of each byte, as the server maps it.
    SingleByte(Box<[char; 256]>),
    Multibyte(&'static Encoding),
    /// Big-endian UTF-32 (`utf32`), which encoding_rs does not decode.
    Utf32,
}

static UTF8: LazyLock<Arc<TextCodec>> = LazyLock::new(|| Arc::new(TextCodec::Utf8));

impl TextCodec {
    pub fn utf8() -> Arc<TextCodec> {
        UTF8.clone()
    }

    /// The column's bytes as text. Only UTF-8 can be malformed here: the
    /// server stores nothing else that its own conversion would refuse, and
    /// a sequence a decoder cannot map becomes U+FFFD, where the server
    /// writes `?`.
    pub fn decode(&self, bytes: Vec<u8>) -> Result<String, String> {
        match self {
            TextCodec::Utf8 => String::from_utf8(bytes).map_err(|e| format!("text column is not valid UTF-8: {e}")),
            TextCodec::SingleByte(chars) => Ok(bytes.iter().map(|&b| chars[usize::from(b)]).collect()),
            TextCodec::Multibyte(encoding) => Ok(encoding.decode_without_bom_handling(&bytes).0.into_owned()),
            TextCodec::Utf32 => Ok(bytes
                .chunks(4)
                .map(|c| {
                    let code = c.iter().fold(0u32, |n, &b| (n << 8) | u32::from(b));
                    char::from_u32(code).filter(|_| c.len() == 4).unwrap_or(char::REPLACEMENT_CHARACTER)
                })
                .collect()),
        }
    }
}

/// Multi-byte character sets by their MySQL names.
fn multibyte(name: &str) -> Option<TextCodec> {
    Some(match name {
        "utf8" | "utf8mb3" | "utf8mb4" => TextCodec::Utf8,
        // UCS-2 is UTF-16 without surrogates.
        "utf16" | "ucs2" => TextCodec::Multibyte(encoding_rs::UTF_16BE),
        "utf16le" => TextCodec::Multibyte(encoding_rs::UTF_16LE),
        "utf32" => TextCodec::Utf32,
        "big5" => TextCodec::Multibyte(encoding_rs::BIG5),
        "gbk" | "gb2312" => TextCodec::Multibyte(encoding_rs::GBK),
        "gb18030" => TextCodec::Multibyte(encoding_rs::GB18030),
        "sjis" | "cp932" => TextCodec::Multibyte(encoding_rs::SHIFT_JIS),
        "ujis" | "eucjpms" => TextCodec::Multibyte(encoding_rs::EUC_JP),
        "euckr" => TextCodec::Multibyte(encoding_rs::EUC_KR),
        _ => return None,
    })
}

/// The server's collations and a decoder for each of its character sets.
#[derive(Debug, Default)]
pub struct Charsets {
    /// Collation number → character set name.
    collations: HashMap<u16, String>,
    /// Character set name → decoder; a name missing here is not supported.
    codecs: HashMap<String, Arc<TextCodec>>,
}

impl Charsets {
    pub async fn load(conn: &mut Conn) -> Result<Self, mysql_async::Error> {
        let mut collations: HashMap<u16, String> = conn
            .query(
                "SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATIONS WHERE ID IS NOT NULL AND CHARACTER_SET_NAME IS NOT NULL",
            )
            .await?
            .into_iter()
            .collect();
        // MariaDB 10.10+ also numbers each collation per character set it
        // applies to (utf8mb4_uca1400_ai_ci and its kin); MySQL has no ID here.
        if let Ok(more) = conn
            .query::<(u16, String), _>(
                "SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATION_CHARACTER_SET_APPLICABILITY \
                 WHERE ID IS NOT NULL AND CHARACTER_SET_NAME IS NOT NULL",
            )
            .await
        {
            collations.extend(more);
        }
        let sets: Vec<(String, u32)> = conn
            .query("SELECT CHARACTER_SET_NAME, MAXLEN FROM information_schema.CHARACTER_SETS")
            .await?;
        let mut codecs = HashMap::new();
        let mut single = Vec::new();
        for (name, maxlen) in sets {
            if name == "binary" {
                continue;
            }
            match multibyte(&name) {
                Some(codec) => {
                    codecs.insert(name, Arc::new(codec));
                }
                None if maxlen == 1 => single.push(name),
                None => {}
            }
        }
        if !single.is_empty() {
            let all_bytes: String = (0..=255u8).map(|b| format!("{b:02X}")).collect();
            let sql = single
                .iter()
                .map(|name| format!("SELECT '{name}', CONVERT(CAST(X'{all_bytes}' AS CHAR CHARACTER SET {name}) USING utf8mb4)"))
                .collect::<Vec<_>>()
                .join(" UNION ALL ");
            let tables: Vec<(String, String)> = conn.query(sql).await?;
            for (name, text) in tables {
                let chars: Vec<char> = text.chars().collect();
                if let Ok(table) = <Box<[char; 256]>>::try_from(chars.into_boxed_slice()) {
                    codecs.insert(name, Arc::new(TextCodec::SingleByte(table)));
                }
            }
        }
        Ok(Charsets { collations, codecs })
    }

    /// How a column of collation `id` reads: None for binary strings.
    pub fn by_collation(&self, id: u16) -> Result<Option<Arc<TextCodec>>, String> {
        if id == BINARY_COLLATION {
            return Ok(None);
        }
        let name = self
            .collations
            .get(&id)
            .ok_or_else(|| format!("collation number {id} is unknown to the server"))?;
        self.by_name(name)
    }

    /// How a column of character set `name` reads: None for `binary`.
    pub fn by_name(&self, name: &str) -> Result<Option<Arc<TextCodec>>, String> {
        if name == "binary" {
            return Ok(None);
        }
        self.codecs
            .get(name)
            .cloned()
            .map(Some)
            .ok_or_else(|| format!("character set `{name}` is not supported"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multibyte_sets_decode_to_the_same_text() {
        let decode = |name: &str, bytes: &[u8]| multibyte(name).unwrap().decode(bytes.to_vec()).unwrap();
        assert_eq!(decode("utf16", &[0, b'c', 0, b'a', 0xD8, 0x3D, 0xDE, 0x80]), "ca🚀");
        assert_eq!(decode("utf16le", &[b'c', 0, b'a', 0]), "ca");
        assert_eq!(decode("ucs2", &[0, 0xE9]), "é");
        assert_eq!(decode("utf32", &[0, 0, 0, b'c', 0, 1, 0xF6, 0x80]), "c🚀");
        assert_eq!(decode("gbk", &[0xD6, 0xD0, 0xCE, 0xC4]), "中文");
        assert_eq!(decode("sjis", &[0x93, 0xFA, 0x96, 0x7B]), "日本");
        assert_eq!(decode("euckr", &[0xC7, 0xD1]), "한");
        assert_eq!(decode("big5", &[0xA4, 0xA4]), "中");
        assert_eq!(decode("ujis", &[0xC6, 0xFC]), "日");
        assert!(
            multibyte("utf8mb4").unwrap().decode(vec![0xC3]).is_err(),
            "malformed UTF-8 is refused"
        );
        assert_eq!(decode("utf32", &[0, 0, 0]), "\u{FFFD}", "a cut-off character is replaced");
    }

    #[test]
    fn single_byte_sets_use_the_servers_table_and_binary_stays_bytes() {
        let mut table = Box::new(['?'; 256]);
        for b in 0..0x80u8 {
            table[usize::from(b)] = char::from(b);
        }
        table[0xE9] = 'é';
        table[0xC3] = 'Ã';
        table[0xA9] = '©';
        let charsets = Charsets {
            collations: [(8, "latin1".to_owned()), (33, "utf8mb3".to_owned()), (99, "nowhere".to_owned())].into(),
            codecs: [
                ("latin1".to_owned(), Arc::new(TextCodec::SingleByte(table))),
                ("utf8mb3".to_owned(), TextCodec::utf8()),
            ]
            .into(),
        };
        let latin1 = charsets.by_collation(8).unwrap().unwrap();
        assert_eq!(
            latin1.decode(vec![0xC3, 0xA9]).unwrap(),
            "Ã©",
            "two latin1 characters, not one UTF-8 one"
        );
        assert_eq!(latin1.decode(b"caf\xE9".to_vec()).unwrap(), "café");
        assert!(charsets.by_collation(BINARY_COLLATION).unwrap().is_none());
        assert_eq!(charsets.by_collation(99).unwrap_err(), "character set `nowhere` is not supported");
        assert!(charsets.by_collation(1234).unwrap_err().contains("1234"));
    }
}
