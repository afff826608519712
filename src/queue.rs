//! A bounded queue to a writer thread that holds memory only for what waits in it. std's
//! `sync_channel(n)` allocates and writes all `n` slots up front: the ledger's 64 Ki rows and
//! the access log's 16 Ki lines kept 2 MiB resident in an idle gateway. This is std's
//! unbounded channel, whose blocks come and go with the messages, bounded by a count.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvError, TryRecvError};
use std::sync::Arc;

/// The sending half; `Sync`, so one can be shared by every request.
pub struct Sender<T> {
    tx: mpsc::Sender<T>,
    waiting: Arc<AtomicUsize>,
    cap: usize,
}

pub struct Receiver<T> {
    rx: mpsc::Receiver<T>,
    waiting: Arc<AtomicUsize>,
}

/// Why a message was not queued; it is given back.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// `cap` messages wait already.
    Full(T),
    /// The receiver is gone.
    Closed(T),
}

/// A queue holding at most `cap` messages sent with [`Sender::try_send`].
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = mpsc::channel();
    let waiting = Arc::new(AtomicUsize::new(0));
    let receiver = Receiver {
        rx,
        waiting: waiting.clone(),
    };
    (Sender { tx, waiting, cap }, receiver)
}

impl<T> Sender<T> {
    /// Queues `m` unless the queue is full (the caller drops and counts it, never waits).
    pub fn try_send(&self, m: T) -> Result<(), TrySendError<T>> {
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= self.cap {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(TrySendError::Full(m));
        }
        self.push(m).map_err(TrySendError::Closed)
    }

    /// Queues `m` even past the bound: for the few control messages (flush, reopen) that must
    /// not be dropped. Gives `m` back if the receiver is gone.
    pub fn send(&self, m: T) -> Result<(), T> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        self.push(m)
    }

    /// Sends `m`, counted in `waiting` already.
    fn push(&self, m: T) -> Result<(), T> {
        self.tx.send(m).map_err(|e| {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            e.0
        })
    }
}

impl<T> Receiver<T> {
    /// The next message, waiting for one; an error once every sender is gone.
    pub fn recv(&self) -> Result<T, RecvError> {
        let m = self.rx.recv()?;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        Ok(m)
    }

    /// The next message if one waits.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let m = self.rx.try_recv()?;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_at_most_cap_then_makes_room_as_messages_are_taken() {
        let (tx, rx) = bounded(2);
        assert_eq!(tx.try_send(1), Ok(()));
        assert_eq!(tx.try_send(2), Ok(()));
        assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(tx.try_send(4), Ok(()));
        assert_eq!(tx.try_send(5), Err(TrySendError::Full(5)));
        assert_eq!(rx.recv(), Ok(2));
        assert_eq!(rx.recv(), Ok(4));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    }

    #[test]
    fn control_messages_pass_a_full_queue_and_a_gone_receiver_gives_them_back() {
        let (tx, rx) = bounded(1);
        assert_eq!(tx.try_send(1), Ok(()));
        assert_eq!(tx.send(9), Ok(()));
        assert_eq!((rx.recv(), rx.recv()), (Ok(1), Ok(9)));
        assert_eq!(tx.try_send(2), Ok(()), "both counted out again");
        drop(rx);
        assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
        let (tx, rx) = bounded(1);
        drop(rx);
        assert_eq!(tx.try_send(4), Err(TrySendError::Closed(4)));
        assert_eq!(
            tx.try_send(5),
            Err(TrySendError::Closed(5)),
            "a refused one is not counted"
        );
    }
}
