//! A bounded queue whose memory follows its backlog, for the writer threads (the ledger's rows,
//! the access log's lines): std's list channel (blocks of slots made as messages come, freed
//! as they go) under a count that bounds it. std's bounded channel makes and touches every
//! slot up front: the ledger's 64k and the access log's 16k held ~2 MiB resident in every
//! gateway, idle or not.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvError, SendError, TryRecvError, TrySendError};
use std::sync::Arc;

/// A queue holding at most `cap` messages sent with [`Sender::try_send`].
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = mpsc::channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let rx = Receiver {
        rx,
        queued: queued.clone(),
    };
    (Sender { tx, queued, cap }, rx)
}

pub struct Sender<T> {
    tx: mpsc::Sender<T>,
    /// Messages sent and not yet received.
    queued: Arc<AtomicUsize>,
    cap: usize,
}

impl<T> Sender<T> {
    /// Queues `m` unless `cap` messages wait already; never blocks.
    pub fn try_send(&self, m: T) -> Result<(), TrySendError<T>> {
        if self.queued.fetch_add(1, Ordering::Relaxed) >= self.cap {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(TrySendError::Full(m));
        }
        self.tx.send(m).map_err(|SendError(m)| {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            TrySendError::Disconnected(m)
        })
    }

    /// Queues `m` whatever the bound (the few control messages: a flush, a reopen).
    pub fn send(&self, m: T) -> Result<(), SendError<T>> {
        self.queued.fetch_add(1, Ordering::Relaxed);
        self.tx.send(m).inspect_err(|_| {
            self.queued.fetch_sub(1, Ordering::Relaxed);
        })
    }
}

pub struct Receiver<T> {
    rx: mpsc::Receiver<T>,
    queued: Arc<AtomicUsize>,
}

impl<T> Receiver<T> {
    /// The next message, waiting for one.
    pub fn recv(&self) -> Result<T, RecvError> {
        self.rx.recv().inspect(|_| self.taken())
    }

    /// The next message if one waits.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.rx.try_recv().inspect(|_| self.taken())
    }

    fn taken(&self) {
        self.queued.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_holds_at_most_its_bound_and_makes_room_as_messages_are_taken() {
        let (tx, rx) = bounded(2);
        assert!(tx.try_send(1).is_ok() && tx.try_send(2).is_ok());
        assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
        // Control messages pass the bound, and count while they wait.
        assert!(tx.send(4).is_ok());
        assert_eq!(rx.recv(), Ok(1));
        assert!(matches!(tx.try_send(5), Err(TrySendError::Full(5))));
        assert_eq!((rx.try_recv(), rx.try_recv()), (Ok(2), Ok(4)));
        assert!(tx.try_send(6).is_ok());
        assert_eq!(rx.try_recv(), Ok(6));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        drop(rx);
        assert!(matches!(tx.try_send(7), Err(TrySendError::Disconnected(7))));
        assert!(tx.send(8).is_err());
        assert!(matches!(tx.try_send(9), Err(TrySendError::Disconnected(9))));
    }
}
