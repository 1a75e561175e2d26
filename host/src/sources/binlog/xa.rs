//! XA transactions in the binlog: `XA PREPARE` ends the group that holds
//! the rows, and `XA COMMIT` or `XA ROLLBACK`, a group of its own that may
//! come much later, decides them. A prepared transaction's rows are held
//! until then, and dropped if it rolls back.

/// An XA transaction's id: its global id and branch qualifier.
pub type Xid = (Vec<u8>, Vec<u8>);

/// What an XA_PREPARE_LOG_EVENT says: the transaction, and whether it was
/// committed in one phase (`XA COMMIT … ONE PHASE`), which ends it at once.
/// Its body: one_phase (1 byte), format id (4), gtrid length (4), bqual
/// length (4), then gtrid and bqual.
pub fn prepared(body: &[u8]) -> Option<(Xid, bool)> {
    let le32 = |at: usize| body.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
    let (gtrid, bqual) = (le32(5)?, le32(9)?);
    let data = body.get(13..13 + gtrid + bqual)?;
    Some(((data[..gtrid].to_vec(), data[gtrid..].to_vec()), body[0] != 0))
}

/// Whether `query` opens an XA transaction (`XA START` or `XA BEGIN`).
pub fn starts(query: &str) -> bool {
    let mut words = query.split_whitespace();
    words.next().is_some_and(|w| w.eq_ignore_ascii_case("XA"))
        && words
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("START") || w.eq_ignore_ascii_case("BEGIN"))
}

/// `XA COMMIT xid` (true) or `XA ROLLBACK xid` (false), with the xid's
/// parts: each a quoted string or a hex literal (`X'…'`, `0x…`).
pub fn decided(query: &str) -> Option<(bool, Xid)> {
    let rest = query.trim_start();
    let words: Vec<&str> = rest.splitn(3, char::is_whitespace).collect();
    if words.len() < 3 || !words[0].eq_ignore_ascii_case("XA") {
        return None;
    }
    let commit = match words[1].to_ascii_uppercase().as_str() {
        "COMMIT" => true,
        "ROLLBACK" => false,
        _ => return None,
    };
    let mut parts = literals(words[2]).into_iter();
    let gtrid = parts.next()?;
    Some((commit, (gtrid, parts.next().unwrap_or_default())))
}

/// The string and hex literals of a comma-separated xid, in order.
fn literals(text: &str) -> Vec<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' => {
                let quote = bytes[i];
                let mut value = Vec::new();
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == quote && bytes.get(i + 1) == Some(&quote) {
                        value.push(quote);
                        i += 2;
                    } else if bytes[i] == quote {
                        break;
                    } else {
                        value.push(bytes[i]);
                        i += 1;
                    }
                }
                out.push(value);
                i += 1;
            }
            b'X' | b'x' if bytes.get(i + 1) == Some(&b'\'') => {
                let end = text[i + 2..].find('\'').map_or(bytes.len(), |e| i + 2 + e);
                out.push(unhex(&text[i + 2..end]));
                i = end + 1;
            }
            b'0' if matches!(bytes.get(i + 1), Some(b'x' | b'X')) => {
                let end = text[i + 2..]
                    .find(|c: char| !c.is_ascii_hexdigit())
                    .map_or(bytes.len(), |e| i + 2 + e);
                out.push(unhex(&text[i + 2..end]));
                i = end;
            }
            _ => i += 1,
        }
    }
    out
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_events_and_decisions_name_the_same_transaction() {
        let mut body = vec![0u8];
        body.extend(1i32.to_le_bytes());
        body.extend(3u32.to_le_bytes());
        body.extend(1u32.to_le_bytes());
        body.extend(b"rb1q");
        assert_eq!(prepared(&body), Some(((b"rb1".to_vec(), b"q".to_vec()), false)));
        assert_eq!(
            decided("XA ROLLBACK X'726231',X'71',1"),
            Some((false, (b"rb1".to_vec(), b"q".to_vec())))
        );
        assert_eq!(decided("xa commit 'rb1','q'"), Some((true, (b"rb1".to_vec(), b"q".to_vec()))));
        assert_eq!(decided("XA COMMIT 0x726231"), Some((true, (b"rb1".to_vec(), Vec::new()))));
        assert_eq!(decided("XA START 'x'"), None);
        assert!(starts("XA START X'726231',X'',1") && !starts("XA END X'72'"));
        assert_eq!(decided("INSERT INTO t VALUES (1)"), None);
    }
}
