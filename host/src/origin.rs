//! Where a change was first made. A pipeline file names its `site`; a record
//! carries the site of its change in the `sluice.origin` header, set by the
//! binlog source for rows the MySQL sink applied (from the marker row the
//! sink writes in the same transaction) and by the Kafka source from the
//! message's header. A record without the header was made at the site of
//! the pipeline that reads it.
//!
//! Two sites that both capture and apply each other's changes would pass
//! every change back and forth forever; [`EchoFilter`] drops, before any
//! plugin sees them, the changes a pipeline must not pass on.
use crate::record::{Header, Record};

/// The header naming a record's site of origin.
pub const ORIGIN_HEADER: &str = "sluice.origin";

/// The table the MySQL sink writes a row of before the rows of each origin
/// in its transaction, and the binlog source reads the origin from.
pub const MARKER_TABLE: &str = "sluice_origin";

/// The longest site id: it is stored in the marker table's `origin` column.
pub const MAX_SITE_LEN: usize = 64;

/// The record's origin, when it names one.
pub fn origin_of(record: &Record) -> Option<&str> {
    record
        .headers
        .iter()
        .find(|h| h.key == ORIGIN_HEADER)
        .and_then(|h| std::str::from_utf8(&h.value).ok())
}

/// Why the record's origin header cannot be taken, if it cannot: one that
/// is not a site id (written by hand, or by another tool) would be stored in
/// the marker table and compared with sites as it is.
pub fn check_origin(record: &Record) -> Result<(), String> {
    let mut headers = record.headers.iter().filter(|h| h.key == ORIGIN_HEADER);
    let Some(header) = headers.next() else {
        return Ok(());
    };
    let more = headers.count();
    if more > 0 {
        return Err(format!("it carries {} {ORIGIN_HEADER} headers: its origin is ambiguous", more + 1));
    }
    let origin = String::from_utf8_lossy(&header.value);
    let shown: String = origin.chars().take(80).collect();
    let more = if shown.len() < origin.len() { "…" } else { "" };
    check_site(&origin).map_err(|_| {
        format!(
            "its {ORIGIN_HEADER} header `{shown}{more}` is not a site id (1 to {MAX_SITE_LEN} of A-Z a-z 0-9 . _ -, not starting with .)"
        )
    })
}

/// Names `origin` as the record's, replacing any origin it had.
pub fn set_origin(record: &mut Record, origin: &str) {
    match record.headers.iter_mut().find(|h| h.key == ORIGIN_HEADER) {
        Some(header) => header.value = origin.as_bytes().to_vec(),
        None => record.headers.push(Header {
            key: ORIGIN_HEADER.into(),
            value: origin.as_bytes().to_vec(),
        }),
    }
}

/// Why a site id is not one, if it is not: it names the marker row's origin
/// and a header value, compared byte for byte.
pub fn check_site(site: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if site.is_empty() || site.len() > MAX_SITE_LEN || site.starts_with('.') || !site.chars().all(allowed) {
        return Err(format!(
            "`{site}` is not a site id: use 1 to {MAX_SITE_LEN} of A-Z a-z 0-9 . _ - (not starting with .)"
        ));
    }
    Ok(())
}

/// Which records a pipeline passes on, by origin.
#[derive(Debug, Default)]
pub struct EchoFilter {
    /// Origins passed on (MySQL → Kafka): the own site and those forwarded.
    passed: Vec<String>,
    /// Origins dropped (MySQL → Kafka: every other; Kafka → MySQL: the own site).
    dropped_only: Option<String>,
}

impl EchoFilter {
    /// MySQL → Kafka at `site`: changes made here, and those from the sites
    /// in `forward`; not those the sink applied from any other site, which
    /// their own site already published.
    pub fn capture(site: Option<&str>, forward: &[String]) -> Option<Self> {
        site.map(|site| EchoFilter {
            passed: forward.iter().cloned().chain([site.to_owned()]).collect(),
            dropped_only: None,
        })
    }

    /// Kafka → MySQL at `site`: everything except the site's own changes
    /// coming back.
    pub fn apply(site: Option<&str>) -> Option<Self> {
        site.map(|site| EchoFilter {
            passed: Vec::new(),
            dropped_only: Some(site.to_owned()),
        })
    }

    /// Keeps the records to pass on; returns how many it dropped.
    pub fn retain(&self, records: &mut Vec<Record>) -> usize {
        let before = records.len();
        records.retain(|record| self.passes(origin_of(record)));
        before - records.len()
    }

    fn passes(&self, origin: Option<&str>) -> bool {
        match (&self.dropped_only, origin) {
            // A record without an origin was made where it was read.
            (_, None) => true,
            (Some(own), Some(origin)) => origin != own,
            (None, Some(origin)) => self.passed.iter().any(|p| p == origin),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Op, Position};

    fn record(origin: Option<&str>) -> Record {
        let mut record = Record {
            op: Op::Insert,
            position: Position::Other("x".into()),
            ts_ms: 0,
            schema: None,
            before: None,
            after: None,
            key: None,
            payload: None,
            headers: Vec::new(),
            destination: None,
        };
        if let Some(origin) = origin {
            set_origin(&mut record, origin);
        }
        record
    }

    fn kept(filter: &EchoFilter, origins: &[Option<&str>]) -> (Vec<Option<String>>, usize) {
        let mut records: Vec<Record> = origins.iter().map(|o| record(*o)).collect();
        let dropped = filter.retain(&mut records);
        (records.iter().map(|r| origin_of(r).map(str::to_owned)).collect(), dropped)
    }

    #[test]
    fn capture_passes_local_changes_and_forwarded_sites_only() {
        let filter = EchoFilter::capture(Some("b"), &["a".into()]).expect("a site");
        let (got, dropped) = kept(&filter, &[None, Some("a"), Some("c"), Some("b"), None]);
        assert_eq!(got, [None, Some("a".into()), Some("b".into()), None]);
        assert_eq!(dropped, 1, "c's change was dropped");
        assert!(EchoFilter::capture(None, &[]).is_none(), "no site, no filter");
    }

    #[test]
    fn apply_drops_only_the_own_sites_changes() {
        let filter = EchoFilter::apply(Some("a")).expect("a site");
        let (got, dropped) = kept(&filter, &[Some("a"), Some("b"), None, Some("a"), Some("c")]);
        assert_eq!(got, [Some("b".into()), None, Some("c".into())]);
        assert_eq!(dropped, 2);
    }

    #[test]
    fn setting_an_origin_replaces_the_one_there() {
        let mut r = record(Some("a"));
        set_origin(&mut r, "b");
        assert_eq!(origin_of(&r), Some("b"));
        assert_eq!(r.headers.len(), 1);
    }

    #[test]
    fn an_origin_header_must_be_a_site_id() {
        assert!(check_origin(&record(None)).is_ok());
        assert!(check_origin(&record(Some("eu-1"))).is_ok());
        for bad in ["", "a b", "😀", &"x".repeat(5000)] {
            let e = check_origin(&record(Some(bad))).expect_err(bad);
            assert!(e.contains("is not a site id"), "{e}");
            assert!(e.len() < 300, "cut: {e}");
        }
        let mut bytes = record(None);
        bytes.headers.push(Header {
            key: ORIGIN_HEADER.into(),
            value: vec![0xff, 0x00],
        });
        assert!(check_origin(&bytes).is_err(), "bytes that are not text");
        let mut twice = record(Some("a"));
        twice.headers.push(Header {
            key: ORIGIN_HEADER.into(),
            value: b"b".to_vec(),
        });
        let e = check_origin(&twice).expect_err("two origins");
        assert!(e.contains("2 sluice.origin headers"), "{e}");
    }

    #[test]
    fn site_ids_are_short_plain_names() {
        assert!(check_site("eu-west.1_a").is_ok());
        for bad in ["", "a b", "ü", ".", ".a", &"x".repeat(65)] {
            assert!(check_site(bad).is_err(), "{bad:?}");
        }
    }
}
