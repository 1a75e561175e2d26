//! Global transaction ids as each server spells them. MariaDB keeps the
//! last GTID per replication domain (`0-1-42,1-2-7`); MySQL keeps the set of
//! every transaction executed per source (`3e11fa47-…:1-5:7,…`). Either is
//! stored as text beside file and position, and either lets a restart find
//! its place on another server of the topology.
use std::collections::BTreeMap;
use std::str::FromStr;

use mysql_async::binlog::events::{Event, GtidEvent};
use mysql_async::{GnoInterval, Sid};

/// MariaDB's GTID event (type 162), which mysql_common does not parse:
/// sequence u64, domain u32, flags u8; the server id is the header's.
const MARIADB_GTID_EVENT: u8 = 162;
/// The GTID's group has no BEGIN/COMMIT (DDL, non-transactional statements).
const FL_STANDALONE: u8 = 1;

/// The GTID of the transaction (or standalone statement) being read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gtid {
    Maria(MariaGtid),
    Mysql(MysqlGtid),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MariaGtid {
    pub domain: u32,
    pub server: u32,
    pub seq: u64,
    pub standalone: bool,
}

/// A source uuid, its tag (MySQL 8.4+) and the transaction's number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlGtid {
    pub source: [u8; 16],
    pub tag: Option<String>,
    pub gno: u64,
}

impl MariaGtid {
    pub fn from_event(event: &Event) -> Option<Self> {
        if event.header().event_type_raw() != MARIADB_GTID_EVENT {
            return None;
        }
        let body = event.data();
        let seq = u64::from_le_bytes(body.get(0..8)?.try_into().ok()?);
        let domain = u32::from_le_bytes(body.get(8..12)?.try_into().ok()?);
        let flags = *body.get(12)?;
        Some(MariaGtid {
            domain,
            server: event.header().server_id(),
            seq,
            standalone: flags & FL_STANDALONE != 0,
        })
    }
}

impl From<&GtidEvent> for MysqlGtid {
    fn from(event: &GtidEvent) -> Self {
        MysqlGtid {
            source: event.sid(),
            tag: event.tag().map(|t| t.as_str().to_owned()),
            gno: event.gno(),
        }
    }
}

impl std::fmt::Display for Gtid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Gtid::Maria(g) => write!(f, "{}-{}-{}", g.domain, g.server, g.seq),
            Gtid::Mysql(g) => f.write_str(&sid(g.source, g.tag.as_deref(), vec![GnoInterval::new(g.gno, g.gno + 1)]).to_string()),
        }
    }
}

/// How far a stream has got, in the server's own GTID terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GtidState {
    /// The last GTID of each domain, as `@@gtid_binlog_pos` and
    /// `@slave_connect_state` spell it.
    Maria(BTreeMap<u32, (u32, u64)>),
    /// `@@gtid_executed`: per (source, tag), the executed numbers as
    /// half-open intervals, sorted and disjoint.
    Mysql(BTreeMap<MysqlSource, Vec<(u64, u64)>>),
}

/// A MySQL GTID's source: the server UUID and, since 8.4, a tag.
type MysqlSource = ([u8; 16], Option<String>);

impl GtidState {
    pub fn parse_maria(text: &str) -> Result<Self, String> {
        let mut state = BTreeMap::new();
        for gtid in entries(text) {
            let parts: Vec<&str> = gtid.split('-').collect();
            let [domain, server, seq] = parts[..] else {
                return Err(format!("`{gtid}` is not a MariaDB GTID (domain-server-seq)"));
            };
            let bad = |e: std::num::ParseIntError| format!("`{gtid}`: {e}");
            state.insert(
                domain.parse().map_err(bad)?,
                (server.parse().map_err(bad)?, seq.parse().map_err(bad)?),
            );
        }
        Ok(GtidState::Maria(state))
    }

    pub fn parse_mysql(text: &str) -> Result<Self, String> {
        let mut set = GtidState::Mysql(BTreeMap::new());
        for entry in entries(text) {
            let parsed = Sid::from_str(entry).map_err(|e| format!("`{entry}` is not a MySQL GTID set entry: {e}"))?;
            for interval in parsed.intervals() {
                let source = (parsed.uuid(), parsed.tag().map(|t| t.as_str().to_owned()));
                set.add_range(source, interval.start(), interval.end());
            }
        }
        Ok(set)
    }

    /// The state once `gtid`'s transaction is complete.
    pub fn apply(&mut self, gtid: &Gtid) {
        match (self, gtid) {
            (GtidState::Maria(state), Gtid::Maria(g)) => {
                state.insert(g.domain, (g.server, g.seq));
            }
            (set @ GtidState::Mysql(_), Gtid::Mysql(g)) => set.add_range((g.source, g.tag.clone()), g.gno, g.gno + 1),
            // A stream speaks its own server's GTIDs only.
            _ => {}
        }
    }

    fn add_range(&mut self, source: ([u8; 16], Option<String>), start: u64, end: u64) {
        let GtidState::Mysql(set) = self else { return };
        let intervals = set.entry(source).or_default();
        intervals.push((start, end));
        intervals.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(intervals.len());
        for &(s, e) in intervals.iter() {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        *intervals = merged;
    }

    /// The set as COM_BINLOG_DUMP_GTID takes it (MySQL).
    pub fn sids(&self) -> Vec<Sid<'static>> {
        match self {
            GtidState::Maria(_) => Vec::new(),
            GtidState::Mysql(set) => set
                .iter()
                .map(|((source, tag), intervals)| {
                    sid(
                        *source,
                        tag.as_deref(),
                        intervals.iter().map(|&(s, e)| GnoInterval::new(s, e)).collect(),
                    )
                })
                .collect(),
        }
    }
}

impl std::fmt::Display for GtidState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = match self {
            GtidState::Maria(state) => state.iter().map(|(d, (s, n))| format!("{d}-{s}-{n}")).collect(),
            GtidState::Mysql(_) => self.sids().iter().map(ToString::to_string).collect(),
        };
        f.write_str(&parts.join(","))
    }
}

/// MySQL prints long sets over several lines.
fn entries(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|g| !g.is_empty())
}

fn sid(source: [u8; 16], tag: Option<&str>, intervals: Vec<GnoInterval>) -> Sid<'static> {
    let sid = Sid::new(source).with_intervals(intervals);
    // Tags come from the server or from a set it printed, so they are valid.
    match tag.map(|t| mysql_common::packets::Tag::new(t.to_owned())) {
        Some(Ok(tag)) => sid.with_tag(tag),
        _ => sid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const B: &str = "4f2b7e10-0000-11e1-9e33-c80aa9429562";

    fn mysql(source: &str, gno: u64) -> Gtid {
        let uuid = Sid::from_str(&format!("{source}:1")).unwrap().uuid();
        Gtid::Mysql(MysqlGtid {
            source: uuid,
            tag: None,
            gno,
        })
    }

    #[test]
    fn maria_state_round_trips_and_advances_per_domain() {
        let mut state = GtidState::parse_maria("0-1-42, 1-2-7").unwrap();
        state.apply(&Gtid::Maria(MariaGtid {
            domain: 0,
            server: 3,
            seq: 43,
            standalone: false,
        }));
        assert_eq!(state.to_string(), "0-3-43,1-2-7");
        assert_eq!(GtidState::parse_maria("").unwrap().to_string(), "");
        assert!(GtidState::parse_maria("0-1").unwrap_err().contains("0-1"));
    }

    #[test]
    fn mysql_set_parses_multi_line_text_and_merges_what_is_added() {
        let mut set = GtidState::parse_mysql(&format!("{A}:1-5:7,\n{B}:3")).unwrap();
        assert_eq!(set.to_string(), format!("{A}:1-5:7,{B}:3"));
        set.apply(&mysql(A, 6));
        assert_eq!(set.to_string(), format!("{A}:1-7,{B}:3"));
        set.apply(&mysql(B, 9));
        set.apply(&mysql(B, 4));
        assert_eq!(set.to_string(), format!("{A}:1-7,{B}:3-4:9"));
        // A transaction seen twice (a repeated stretch after a restart) changes nothing.
        set.apply(&mysql(A, 3));
        assert_eq!(set.to_string(), format!("{A}:1-7,{B}:3-4:9"));
        let sids = set.sids();
        assert_eq!(sids.len(), 2);
        assert_eq!(
            sids[1].intervals().iter().map(|i| (i.start(), i.end())).collect::<Vec<_>>(),
            vec![(3, 5), (9, 10)]
        );
    }

    #[test]
    fn mysql_set_keeps_tagged_sources_apart() {
        let set = GtidState::parse_mysql(&format!("{A}:1-3,{A}:batch:1-2")).unwrap();
        assert_eq!(set.sids().len(), 2);
        assert_eq!(GtidState::parse_mysql(&set.to_string()).unwrap(), set);
        assert!(GtidState::parse_mysql("not-a-uuid:1").unwrap_err().contains("not-a-uuid"));
    }

    #[test]
    fn a_single_gtid_prints_as_the_server_does() {
        assert_eq!(mysql(A, 12).to_string(), format!("{A}:12"));
        assert_eq!(
            Gtid::Maria(MariaGtid {
                domain: 0,
                server: 1,
                seq: 9,
                standalone: true
            })
            .to_string(),
            "0-1-9"
        );
    }
}
