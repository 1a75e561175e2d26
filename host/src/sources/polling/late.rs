//! Rows that commit with a timestamp the high-water mark has already
//! passed: a transaction open longer than `delay_ms`, or a clock behind.
//! A trailing window of `lookback_ms` behind the mark is read again each
//! poll; a row found there that was never delivered is late. It is logged
//! as a warning, with how far behind it is, and delivered.
use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

/// Positions (dedup ids) delivered within the window, oldest first.
pub struct LateRows {
    window: Duration,
    seen: HashSet<String>,
    delivered: VecDeque<(Instant, String)>,
    /// Until the first re-read (after a start), every row in the window
    /// counts as delivered: a restart does not know what was.
    primed: bool,
}

impl LateRows {
    pub fn new(window: Duration) -> Self {
        LateRows {
            window,
            seen: HashSet::new(),
            delivered: VecDeque::new(),
            primed: false,
        }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// Records that the row of `position` was delivered.
    pub fn delivered(&mut self, position: &str) {
        if self.seen.insert(position.to_owned()) {
            self.delivered.push_back((Instant::now(), position.to_owned()));
        }
    }

    /// Of the rows read again in the window, the ones never delivered.
    /// Rows leave the window a while after its span: the mark trails the
    /// clock by the delay, so a row delivered now is in the window for
    /// about its span.
    pub fn late<'a>(&mut self, positions: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
        let keep = self.window * 2;
        while self.delivered.front().is_some_and(|(at, _)| at.elapsed() > keep) {
            let (_, position) = self.delivered.pop_front().expect("non-empty");
            self.seen.remove(&position);
        }
        let primed = std::mem::replace(&mut self.primed, true);
        let mut late = Vec::new();
        for position in positions {
            if !self.seen.contains(position) {
                if primed {
                    late.push(position);
                }
                self.delivered(position);
            }
        }
        late
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_never_delivered_is_late_once_and_the_first_read_only_learns() {
        let mut late = LateRows::new(Duration::from_secs(60));
        assert!(
            late.late(["a", "b"].into_iter()).is_empty(),
            "after a start, what is there counts as delivered"
        );
        late.delivered("c");
        assert_eq!(late.late(["a", "b", "c", "d"].into_iter()), ["d"]);
        assert!(
            late.late(["a", "b", "c", "d"].into_iter()).is_empty(),
            "reported and delivered once"
        );
    }
}
