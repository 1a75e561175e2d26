//! Batches handed to a sink, oldest first, each with the source position its
//! delivery makes safe to store. A position becomes storable only once its
//! batch and every batch before it are acknowledged, and never past a batch
//! that failed: a restart then repeats the failed batch, and loses nothing.
use std::collections::VecDeque;

use tokio::task::JoinHandle;

/// A batch's acknowledgements, and the position they allow.
type Waiting<P, E> = (JoinHandle<Result<(), E>>, Option<P>);

pub(super) struct InOrderAcks<P, E> {
    waiting: VecDeque<Waiting<P, E>>,
    acked: Option<P>,
}

impl<P, E> InOrderAcks<P, E> {
    pub(super) fn new() -> Self {
        InOrderAcks {
            waiting: VecDeque::new(),
            acked: None,
        }
    }

    /// A batch's acknowledgements, and the position they allow, if any.
    pub(super) fn push(&mut self, acks: JoinHandle<Result<(), E>>, position: Option<P>) {
        self.waiting.push_back((acks, position));
    }

    pub(super) fn len(&self) -> usize {
        self.waiting.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Whether the oldest batch has its answer, so settling it will not wait.
    pub(super) fn oldest_answered(&self) -> bool {
        self.waiting.front().is_some_and(|(acks, _)| acks.is_finished())
    }

    /// Waits for the oldest batch; once it is acknowledged its position is
    /// the one to store. A failed batch leaves the stored position where it was.
    /// Panics when nothing waits.
    pub(super) async fn settle_oldest(&mut self) -> Result<(), E> {
        let (acks, position) = self.waiting.pop_front().expect("a batch waits");
        acks.await.expect("acknowledgement task")?;
        if position.is_some() {
            self.acked = position;
        }
        Ok(())
    }

    /// The position every acknowledged batch so far allows, once.
    pub(super) fn take_acked(&mut self) -> Option<P> {
        self.acked.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Five batches whose acknowledgements all arrive, the third with a failure.
    fn five_batches_the_third_failing() -> InOrderAcks<u32, String> {
        let mut acks = InOrderAcks::new();
        for batch in 1..=5u32 {
            let answer = tokio::spawn(async move {
                if batch == 3 {
                    Err(format!("batch {batch} refused"))
                } else {
                    Ok(())
                }
            });
            acks.push(answer, Some(batch));
        }
        acks
    }

    #[tokio::test]
    async fn a_position_is_stored_only_after_every_earlier_batch_and_never_past_a_failed_one() {
        let mut acks = five_batches_the_third_failing();
        // Let every acknowledgement arrive, later ones included, before settling any.
        while !acks.waiting.iter().all(|(answer, _)| answer.is_finished()) {
            tokio::task::yield_now().await;
        }
        acks.settle_oldest().await.unwrap();
        assert_eq!(acks.take_acked(), Some(1));
        acks.settle_oldest().await.unwrap();
        assert_eq!(acks.take_acked(), Some(2));
        assert_eq!(acks.settle_oldest().await.unwrap_err(), "batch 3 refused");
        assert_eq!(acks.take_acked(), None, "the failed batch allows no position");
        assert_eq!(acks.len(), 2, "batches 4 and 5 are left unsettled, acknowledged or not");
    }

    #[tokio::test]
    async fn positions_advance_in_batch_order_whatever_order_the_answers_come_in() {
        let mut acks = InOrderAcks::<u32, String>::new();
        let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
        acks.push(tokio::spawn(async move { first_rx.await.map_err(|e| e.to_string()) }), Some(1));
        acks.push(tokio::spawn(async { Ok(()) }), Some(2));
        acks.push(tokio::spawn(async { Ok(()) }), None);
        tokio::task::yield_now().await;
        assert!(!acks.oldest_answered(), "batch 1 has no answer yet");
        assert_eq!(acks.take_acked(), None, "batch 2's answer alone allows nothing");
        first_tx.send(()).unwrap();
        acks.settle_oldest().await.unwrap();
        acks.settle_oldest().await.unwrap();
        acks.settle_oldest().await.unwrap();
        assert_eq!(acks.take_acked(), Some(2), "a batch without a position keeps the last one");
        assert!(acks.is_empty());
    }
}
