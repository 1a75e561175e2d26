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
    SingleByte(Box<ByteTable>),
    /// A multi-byte set (`sjis`, `gbk`, `big5`, …) as the server maps it:
    /// every character of one, two or three bytes, asked once.
    Mapped(Box<MappedSet>),
    /// Sets whose mapping is Unicode's own (UTF-16) or a standard's
    /// (GB 18030's four-byte ranges), through encoding_rs.
    Multibyte(&'static Encoding),
    /// Big-endian UTF-32 (`utf32`), which encoding_rs does not decode.
    Utf32,
}

/// A single-byte set's characters, and whether its ASCII is ASCII.
#[derive(Debug)]
pub struct ByteTable {
    chars: [char; 256],
    ascii: bool,
}

impl ByteTable {
    fn new(chars: [char; 256]) -> Self {
        ByteTable {
            ascii: ascii_is_ascii(|b| Some(chars[usize::from(b)])),
            chars,
        }
    }
}

/// One multi-byte character set, as the server converts each sequence.
#[derive(Debug, Default)]
pub struct MappedSet {
    /// Whether its one-byte ASCII sequences are ASCII.
    ascii: bool,
    single: HashMap<u8, char>,
    double: HashMap<u16, char>,
    triple: HashMap<u32, char>,
}

impl MappedSet {
    /// The longest sequence the server knows at each byte; a byte it does
    /// not is `?`, as the server writes it.
    fn decode(&self, bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let at = |n: usize| bytes.get(i..i + n);
            let three = at(3).and_then(|b| self.triple.get(&u32::from_be_bytes([0, b[0], b[1], b[2]])));
            let two = at(2).and_then(|b| self.double.get(&u16::from_be_bytes([b[0], b[1]])));
            let (c, len) = match (three, two, self.single.get(&bytes[i])) {
                (Some(&c), _, _) => (c, 3),
                (None, Some(&c), _) => (c, 2),
                (None, None, Some(&c)) => (c, 1),
                (None, None, None) => ('?', 1),
            };
            out.push(c);
            i += len;
        }
        out
    }
}

static UTF8: LazyLock<Arc<TextCodec>> = LazyLock::new(|| Arc::new(TextCodec::Utf8));

impl TextCodec {
    pub fn utf8() -> Arc<TextCodec> {
        UTF8.clone()
    }

    /// The column's bytes as text. Only UTF-8 can be malformed here: the
    /// server stores nothing else that its own conversion would refuse.
    pub fn decode(&self, bytes: Vec<u8>) -> Result<String, String> {
        match self {
            TextCodec::Utf8 => String::from_utf8(bytes).map_err(|e| format!("text column is not valid UTF-8: {e}")),
            // Text that is all ASCII, in a set whose ASCII is ASCII (`latin1`,
            // MariaDB's default, among them), is already UTF-8: the vector is
            // taken as it is rather than rebuilt a character at a time.
            TextCodec::SingleByte(table) if table.ascii && bytes.is_ascii() => Ok(String::from_utf8(bytes).expect("ASCII is UTF-8")),
            TextCodec::SingleByte(table) => Ok(bytes.iter().map(|&b| table.chars[usize::from(b)]).collect()),
            TextCodec::Mapped(set) if set.ascii && bytes.is_ascii() => Ok(String::from_utf8(bytes).expect("ASCII is UTF-8")),
            TextCodec::Mapped(set) => Ok(set.decode(&bytes)),
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

/// Whether a set maps every ASCII byte to itself.
fn ascii_is_ascii(map: impl Fn(u8) -> Option<char>) -> bool {
    (0..0x80u8).all(|b| map(b) == Some(char::from(b)))
}

/// Sets decoded by their Unicode mapping, by their MySQL names.
fn unicode(name: &str) -> Option<TextCodec> {
    Some(match name {
        "utf8" | "utf8mb3" | "utf8mb4" => TextCodec::Utf8,
        // UCS-2 is UTF-16 without surrogates.
        "utf16" | "ucs2" => TextCodec::Multibyte(encoding_rs::UTF_16BE),
        "utf16le" => TextCodec::Multibyte(encoding_rs::UTF_16LE),
        "utf32" => TextCodec::Utf32,
        // MySQL 8 only; its four-byte ranges are the standard's.
        "gb18030" => TextCodec::Multibyte(encoding_rs::GB18030),
        _ => return None,
    })
}

/// Multi-byte sets mapped from the server, and whether they have
/// three-byte sequences (EUC-JP's 0x8F, JIS X 0212).
const MAPPED: &[(&str, bool)] = &[
    ("sjis", false),
    ("cp932", false),
    ("ujis", true),
    ("eucjpms", true),
    ("big5", false),
    ("gbk", false),
    ("gb2312", false),
    ("euckr", false),
];

/// A collation: its character set and name.
#[derive(Debug, Clone)]
pub struct Collation {
    pub charset: String,
    pub name: String,
}

impl Collation {
    /// Whether it compares letters regardless of case (`…_ci`).
    pub fn folds_case(&self) -> bool {
        self.name.ends_with("_ci")
    }

    /// Whether it ignores trailing spaces (PAD SPACE, all but `…nopad…`).
    pub fn pads(&self) -> bool {
        !self.name.contains("nopad") && !self.name.ends_with("_0900_bin") && !self.name.contains("_0900_a")
    }
}

/// The server's collations and a decoder for each of its character sets.
#[derive(Debug, Default)]
pub struct Charsets {
    /// Collation number → its set and name.
    collations: HashMap<u16, Collation>,
    /// Character set name → decoder; a name missing here is not supported
    /// (or, for the mapped multi-byte sets, not yet asked for).
    codecs: HashMap<String, Arc<TextCodec>>,
}

impl Charsets {
    /// The collations and the single-byte sets, which every server has few
    /// enough of to map at once; the multi-byte ones come with [`Charsets::ensure`].
    pub async fn load(conn: &mut Conn) -> Result<Self, mysql_async::Error> {
        let mut rows: Vec<(u16, String, String)> = conn
            .query(
                "SELECT ID, CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLLATIONS \
                 WHERE ID IS NOT NULL AND CHARACTER_SET_NAME IS NOT NULL",
            )
            .await?;
        // MariaDB 10.10+ also numbers each collation per character set it
        // applies to (utf8mb4_uca1400_ai_ci and its kin); MySQL has no ID here.
        if let Ok(more) = conn
            .query::<(u16, String, String), _>(
                "SELECT ID, CHARACTER_SET_NAME, FULL_COLLATION_NAME FROM information_schema.COLLATION_CHARACTER_SET_APPLICABILITY \
                 WHERE ID IS NOT NULL AND CHARACTER_SET_NAME IS NOT NULL",
            )
            .await
        {
            rows.extend(more);
        }
        let collations = rows
            .into_iter()
            .map(|(id, charset, name)| (id, Collation { charset, name }))
            .collect();
        let sets: Vec<(String, u32)> = conn
            .query("SELECT CHARACTER_SET_NAME, MAXLEN FROM information_schema.CHARACTER_SETS")
            .await?;
        let mut codecs = HashMap::new();
        let mut single = Vec::new();
        for (name, maxlen) in sets {
            match unicode(&name) {
                Some(codec) => {
                    codecs.insert(name, Arc::new(codec));
                }
                None if maxlen == 1 && name != "binary" => single.push(name),
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
                if let Ok(chars) = <[char; 256]>::try_from(chars) {
                    codecs.insert(name, Arc::new(TextCodec::SingleByte(Box::new(ByteTable::new(chars)))));
                }
            }
        }
        Ok(Charsets { collations, codecs })
    }

    /// Maps the multi-byte sets among `names` not mapped yet: every one-,
    /// two- (and for EUC-JP three-) byte sequence converted by the server
    /// itself, a few tens of thousands of rows per set, once.
    pub async fn ensure(&mut self, conn: &mut Conn, names: impl IntoIterator<Item = String>) -> Result<(), mysql_async::Error> {
        for name in names {
            let Some(&(_, triple)) = MAPPED.iter().find(|(n, _)| *n == name) else {
                continue;
            };
            if self.codecs.contains_key(&name) {
                continue;
            }
            let bytes = "WITH RECURSIVE b(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM b WHERE n < 255)";
            let hex = |n: &str| format!("LPAD(HEX({n}), 2, '0')");
            let convert = |hexes: String| format!("CONVERT(CAST(UNHEX(CONCAT({hexes})) AS CHAR CHARACTER SET {name}) USING utf8mb4)");
            let mut set = MappedSet::default();
            let rows: Vec<(u32, String)> = conn.query(format!("{bytes} SELECT n, {} FROM b", convert(hex("n")))).await?;
            set.single
                .extend(rows.into_iter().filter_map(|(n, text)| Some((n as u8, one_char(&text)?))));
            let sql = format!(
                "{bytes} SELECT hi.n * 256 + lo.n, {} FROM b AS hi, b AS lo WHERE hi.n >= 128",
                convert(format!("{}, {}", hex("hi.n"), hex("lo.n")))
            );
            let rows: Vec<(u32, String)> = conn.query(sql).await?;
            set.double
                .extend(rows.into_iter().filter_map(|(n, text)| Some((n as u16, one_char(&text)?))));
            if triple {
                let sql = format!(
                    "{bytes} SELECT 9371648 + hi.n * 256 + lo.n, {} FROM b AS hi, b AS lo WHERE hi.n >= 161 AND lo.n >= 161",
                    convert(format!("'8F', {}, {}", hex("hi.n"), hex("lo.n")))
                );
                let rows: Vec<(u32, String)> = conn.query(sql).await?;
                set.triple
                    .extend(rows.into_iter().filter_map(|(n, text)| Some((n, one_char(&text)?))));
            }
            self.codecs.insert(name, Arc::new(TextCodec::Mapped(Box::new(set))));
        }
        Ok(())
    }

    /// The collation of number `id`.
    pub fn collation(&self, id: u16) -> Option<&Collation> {
        self.collations.get(&id)
    }

    /// How a column of collation `id` reads: None for binary strings.
    pub fn by_collation(&self, id: u16) -> Result<Option<Arc<TextCodec>>, String> {
        if id == BINARY_COLLATION {
            return Ok(None);
        }
        let collation = self
            .collations
            .get(&id)
            .ok_or_else(|| format!("collation number {id} is unknown to the server"))?;
        self.by_name(&collation.charset)
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

/// The character `text` holds, if it is exactly one.
fn one_char(text: &str) -> Option<char> {
    let mut chars = text.chars();
    let c = chars.next()?;
    chars.next().is_none().then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_sets_decode_to_the_same_text() {
        let decode = |name: &str, bytes: &[u8]| unicode(name).unwrap().decode(bytes.to_vec()).unwrap();
        assert_eq!(decode("utf16", &[0, b'c', 0, b'a', 0xD8, 0x3D, 0xDE, 0x80]), "ca🚀");
        assert_eq!(decode("utf16le", &[b'c', 0, b'a', 0]), "ca");
        assert_eq!(decode("ucs2", &[0, 0xE9]), "é");
        assert_eq!(decode("utf32", &[0, 0, 0, b'c', 0, 1, 0xF6, 0x80]), "c🚀");
        assert!(
            unicode("utf8mb4").unwrap().decode(vec![0xC3]).is_err(),
            "malformed UTF-8 is refused"
        );
        assert_eq!(decode("utf32", &[0, 0, 0]), "\u{FFFD}", "a cut-off character is replaced");
    }

    #[test]
    fn mapped_sets_read_the_longest_sequence_the_server_knows() {
        let mut set = MappedSet::default();
        set.single.extend([(b'a', 'a'), (0x5C, '\\'), (0xB1, 'ｱ')]);
        set.double.extend([(0x8160, '〜'), (0x93FA, '日')]);
        set.triple.insert(0x8FB0A1, '丂');
        assert_eq!(set.decode(&[b'a', 0x81, 0x60, 0x5C, 0xB1, 0x93, 0xFA]), "a〜\\ｱ日");
        assert_eq!(
            set.decode(&[0x8F, 0xB0, 0xA1, 0xFF]),
            "丂?",
            "three bytes, then a byte no sequence starts with"
        );
    }

    #[test]
    fn single_byte_sets_use_the_servers_table_and_binary_stays_bytes() {
        let mut chars = ['?'; 256];
        for b in 0..0x80u8 {
            chars[usize::from(b)] = char::from(b);
        }
        chars[0xE9] = 'é';
        chars[0xC3] = 'Ã';
        chars[0xA9] = '©';
        let table = Box::new(ByteTable::new(chars));
        assert!(table.ascii);
        let collation = |charset: &str| Collation {
            charset: charset.into(),
            name: format!("{charset}_swedish_ci"),
        };
        let charsets = Charsets {
            collations: [(8, collation("latin1")), (33, collation("utf8mb3")), (99, collation("nowhere"))].into(),
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
        assert!(charsets.collation(8).unwrap().folds_case() && charsets.collation(8).unwrap().pads());
    }
}
