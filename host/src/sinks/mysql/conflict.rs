//! Conflict rules: which of two changes of one key wins when both sites
//! changed it. The target rows a chunk touches are locked, each change is
//! judged by the server against the row it would overwrite (so that the
//! server's own types compare the versions: a DATETIME(6) against the text
//! of one, a counter against a number), and only the winners are written.
use std::collections::HashMap;

use mysql_async::prelude::Queryable;
use mysql_async::{Transaction, Value as Wire};

use super::ConflictRule;
use super::change::Change;
use super::plan::Planned;
use super::target::TargetTable;
use crate::mysql::catalog::{key_equals, quote};
use crate::record::{Op, Record};
use crate::rejected::Rejected;

/// How one chunk of changes is judged.
pub(super) struct Judge<'a> {
    pub rule: ConflictRule,
    pub version: &'a str,
    /// This sink's site, and the site the chunk's changes came from: on
    /// equal versions the one that sorts last wins. A change without an
    /// origin loses ties.
    pub site: Option<&'a str>,
    pub origin: Option<&'a str>,
}

/// A chunk split by the rule: the changes to write, and the records that
/// lost (or cannot be judged), with why.
pub(super) struct Verdict<'p> {
    pub winners: Vec<&'p Planned>,
    pub losers: Vec<Rejected>,
    pub unwritable: Vec<Rejected>,
}

impl Judge<'_> {
    pub async fn judge<'p>(
        &self,
        tx: &mut Transaction<'_>,
        target: &TargetTable,
        chunk: Vec<&'p Planned>,
    ) -> Result<Verdict<'p>, mysql_async::Error> {
        let mut verdict = Verdict {
            winners: Vec::with_capacity(chunk.len()),
            losers: Vec::new(),
            unwritable: Vec::new(),
        };
        let Some(version) = target.column(self.version) else {
            let reason = format!(
                "the destination table has no version column `{}`, which conflict = \"{}\" compares",
                self.version,
                self.rule.name()
            );
            verdict.unwritable = chunk.iter().map(|p| unwritable(&p.record, reason.clone())).collect();
            return Ok(verdict);
        };
        // Each change's test against the row it would overwrite.
        let mut tests = Vec::with_capacity(chunk.len());
        for (i, p) in chunk.iter().enumerate() {
            match self.test(target, version, p) {
                Ok(test) => tests.push((i, test)),
                Err(reason) => verdict.unwritable.push(unwritable(&p.record, reason)),
            }
        }
        if tests.is_empty() {
            return Ok(verdict);
        }
        let key_match = key_equals(&target.key);
        // Locked first, so no writer changes them between the test and the write.
        let lock = format!(
            "SELECT 1 FROM {} WHERE {} FOR UPDATE",
            target.sql_name,
            vec![format!("({key_match})"); tests.len()].join(" OR ")
        );
        let keys: Vec<Wire> = tests.iter().flat_map(|(i, _)| chunk[*i].change.key(target)).collect();
        tx.exec_drop(lock, keys).await?;
        let mut sql = Vec::with_capacity(tests.len());
        let mut params = Vec::new();
        for (i, test) in &tests {
            sql.push(format!(
                "SELECT {i}, {}, {} FROM {} WHERE {key_match}",
                test.loses, test.tie, target.sql_name
            ));
            params.extend(test.params.iter().cloned());
            params.extend(chunk[*i].change.key(target));
        }
        // A row per key the target holds: whether the change loses to it.
        let found: Vec<(u64, bool, bool)> = tx.exec(sql.join(" UNION ALL "), params).await?;
        let found: HashMap<usize, (bool, bool)> = found.into_iter().map(|(i, loses, tie)| (i as usize, (loses, tie))).collect();
        for (i, test) in tests {
            let p = chunk[i];
            let outcome = match found.get(&i) {
                Some(&(true, tie)) => Some(self.reason(p, Some(tie))),
                Some(_) => None,
                None if test.absent_loses => Some(self.reason(p, None)),
                None => None,
            };
            match outcome {
                Some(reason) => verdict.losers.push(Rejected::conflict(p.record.clone(), "sink:mysql", reason)),
                None => verdict.winners.push(p),
            }
        }
        Ok(verdict)
    }

    /// The SQL that says whether `p` loses to the target's row (and whether
    /// the versions were equal), with its parameters.
    fn test(&self, target: &TargetTable, version: usize, p: &Planned) -> Result<Test, String> {
        let column = quote(self.version);
        let delete = matches!(p.change, Change::Delete(_));
        let value = |image: Option<&Vec<crate::record::Value>>| -> Result<Wire, String> {
            let schema = p.record.schema.as_deref().ok_or("a raw message has no version")?;
            let at = schema.index_of(self.version).ok_or_else(|| {
                format!(
                    "the record has no `{}` column, which conflict = \"{}\" compares",
                    self.version,
                    self.rule.name()
                )
            })?;
            let row = image.ok_or("the record has no row image to read its version from")?;
            Ok(row.get(at).map_or(Wire::NULL, |v| target.convert(version, v)))
        };
        let tie = format!("{column} <=> ?");
        Ok(match self.rule {
            ConflictRule::SourceWins => unreachable!("source-wins judges nothing"),
            ConflictRule::LastWriterWins if delete => {
                let before = value(p.record.before.as_ref())?;
                Test {
                    loses: format!("NOT COALESCE({column} IS NULL OR {column} <= ?, FALSE)"),
                    tie,
                    params: vec![before.clone(), before],
                    absent_loses: false,
                }
            }
            ConflictRule::LastWriterWins => {
                let after = value(p.record.after.as_ref())?;
                let ties_won = match (self.origin, self.site) {
                    (Some(origin), Some(site)) => origin > site,
                    (Some(_), None) => true,
                    (None, _) => false,
                };
                // No version is older than any; two rows without one tie.
                Test {
                    loses: format!(
                        "NOT (COALESCE({column} < ?, FALSE) OR ({column} IS NULL AND ? IS NOT NULL) OR ({column} <=> ? AND {ties_won}))"
                    ),
                    tie,
                    params: vec![after.clone(), after.clone(), after.clone(), after],
                    absent_loses: false,
                }
            }
            // Inserts and snapshot rows expect no row; an update or a delete
            // expects the row its source changed.
            ConflictRule::TargetWins if matches!(p.record.op, Op::Insert | Op::Read) && !delete => Test {
                loses: "TRUE".into(),
                tie: "FALSE".into(),
                params: Vec::new(),
                absent_loses: false,
            },
            // An update of a row the target no longer has: the target deleted it.
            ConflictRule::TargetWins => {
                let before = value(p.record.before.as_ref())?;
                Test {
                    loses: format!("NOT ({column} <=> ?)"),
                    tie: "FALSE".into(),
                    params: vec![before],
                    absent_loses: !delete,
                }
            }
        })
    }

    /// Why `p` lost: to the target's row (`tie`: whether their versions
    /// were equal), or, None, to its absence.
    fn reason(&self, p: &Planned, tie: Option<bool>) -> String {
        let column = self.version;
        match self.rule {
            _ if tie.is_none() => "target-wins: the target has no row with this key (it was deleted there)".into(),
            ConflictRule::LastWriterWins if tie == Some(true) => format!(
                "last-writer-wins: the target row's `{column}` equals this change's, and ties go to site `{}` over `{}`",
                self.site.unwrap_or("-"),
                self.origin.unwrap_or("-")
            ),
            ConflictRule::LastWriterWins => format!("last-writer-wins: the target row's `{column}` is newer than this change's"),
            ConflictRule::TargetWins if matches!(p.record.op, Op::Insert | Op::Read) && !matches!(p.change, Change::Delete(_)) => {
                "target-wins: the target already holds a row with this key".into()
            }
            _ => format!("target-wins: the target row's `{column}` changed since the source's row this change was made from"),
        }
    }
}

/// A change's test: SQL for "loses" and for "equal versions", the
/// parameters they take in order, and whether it loses where the target
/// has no row.
struct Test {
    loses: String,
    tie: String,
    params: Vec<Wire>,
    absent_loses: bool,
}

fn unwritable(record: &Record, reason: String) -> Rejected {
    Rejected::unwritable(record.clone(), "sink:mysql", reason)
}
