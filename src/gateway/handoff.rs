//! A bounded queue between two futures that one task polls together (the stream relay's
//! upstream reader and client writer, under one `select!`): a `VecDeque` under an uncontended
//! lock, holding memory only for what waits. tokio's channel made an `Arc`'d channel and a
//! block of 32 slots for every stream: about one of the ~16 pages a stream first touches
//! (`perf record -e page-faults` with call stacks, 500 streams).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};

pub(super) struct Handoff<T> {
    state: Mutex<State<T>>,
    cap: usize,
}

struct State<T> {
    items: VecDeque<T>,
    /// The receiver, waiting for an item.
    want_item: Option<Waker>,
    /// The sender, waiting for room.
    want_room: Option<Waker>,
}

impl<T> Handoff<T> {
    pub(super) fn new(cap: usize) -> Self {
        Handoff {
            state: Mutex::new(State {
                items: VecDeque::new(),
                want_item: None,
                want_room: None,
            }),
            cap: cap.max(1),
        }
    }

    fn state(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics while it is held; a poisoned lock's state is whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `item`, waiting while `cap` items wait already.
    pub(super) async fn send(&self, item: T) {
        let mut item = Some(item);
        poll_fn(|cx| {
            let mut s = self.state();
            if s.items.len() >= self.cap {
                s.want_room = Some(cx.waker().clone());
                return Poll::Pending;
            }
            s.items.extend(item.take());
            if let Some(w) = s.want_item.take() {
                w.wake();
            }
            Poll::Ready(())
        })
        .await
    }

    /// The next item, waiting for one.
    pub(super) async fn recv(&self) -> T {
        poll_fn(|cx| match self.try_recv() {
            Some(item) => Poll::Ready(item),
            None => {
                self.state().want_item = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    /// The next item if one waits.
    pub(super) fn try_recv(&self) -> Option<T> {
        let mut s = self.state();
        let item = s.items.pop_front()?;
        if let Some(w) = s.want_room.take() {
            w.wake();
        }
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn items_arrive_in_order_and_a_full_queue_holds_the_sender() {
        let h = Handoff::new(2);
        let sender = async {
            for i in 0..100u32 {
                h.send(i).await;
            }
        };
        let receiver = async {
            let mut got = Vec::new();
            while got.len() < 100 {
                got.push(h.recv().await);
                assert!(h.state().items.len() <= 2);
                while let Some(i) = h.try_recv() {
                    got.push(i);
                }
                tokio::task::yield_now().await;
            }
            got
        };
        let ((), got) = tokio::join!(sender, receiver);
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        assert!(h.try_recv().is_none());
    }

    #[tokio::test]
    async fn a_waiting_receiver_is_woken_by_a_send() {
        let h = std::sync::Arc::new(Handoff::new(4));
        let h2 = h.clone();
        let recv = tokio::spawn(async move { h2.recv().await });
        tokio::task::yield_now().await;
        h.send(7u8).await;
        assert_eq!(
            tokio::time::timeout(std::time::Duration::from_secs(5), recv)
                .await
                .unwrap()
                .unwrap(),
            7
        );
    }
}
