//! How much a plugin may log per batch, through the `log` import and its
//! stderr together: a plugin that writes megabytes a batch must not flood
//! the host's log. What is over the budget is dropped, and the batch's end
//! says how much.
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct LogBudget(Arc<Mutex<Budget>>);

struct Budget {
    per_batch: usize,
    left: usize,
    dropped: usize,
}

impl LogBudget {
    pub fn new(per_batch: usize) -> Self {
        LogBudget(Arc::new(Mutex::new(Budget {
            per_batch,
            left: per_batch,
            dropped: 0,
        })))
    }

    /// A new batch: the full budget again; returns the bytes dropped in the last.
    pub fn restart(&self) -> usize {
        let mut budget = self.0.lock().expect("log budget lock");
        budget.left = budget.per_batch;
        std::mem::take(&mut budget.dropped)
    }

    /// As much of `message` as the budget allows (cut at a character
    /// boundary, with a note when cut), or None once it is spent.
    pub fn take<'a>(&self, message: &'a str) -> Option<std::borrow::Cow<'a, str>> {
        let mut budget = self.0.lock().expect("log budget lock");
        if message.len() <= budget.left {
            budget.left -= message.len();
            return Some(message.into());
        }
        let mut end = budget.left;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        budget.dropped += message.len() - end;
        let first_cut = budget.left > 0;
        budget.left = 0;
        first_cut.then(|| {
            format!(
                "{}… (cut: the plugin's log is over limits.log_bytes_per_batch of {} bytes)",
                &message[..end],
                budget.per_batch
            )
            .into()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_logs_up_to_its_budget_and_says_what_it_dropped() {
        let budget = LogBudget::new(10);
        assert_eq!(budget.take("12345").as_deref(), Some("12345"));
        let cut = budget.take("6789é123").unwrap();
        assert!(cut.starts_with("6789…") && cut.contains("10 bytes"), "{cut}");
        assert_eq!(budget.take("more"), None);
        assert_eq!(budget.restart(), 5 + 4, "the cut part of the second message and all of the third");
        assert_eq!(budget.take("again").as_deref(), Some("again"));
    }
}
