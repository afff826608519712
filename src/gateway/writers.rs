//! What the relay's loop writes each upstream chunk through: as it came, metered
//! (`Passthrough`), or translated into the client's API (`Translating`).

use super::reply::{Reply, MAX_REPLY};
use crate::cache::Reply as Recorded;
use crate::error::ApiError;
use crate::formats::{self, Format, ReplyContext};
use crate::stream::{Meter, Recorder, Tally, Translator};
use bytes::{Bytes, BytesMut};
use pingora::protocols::http::HttpTask;
use std::sync::Arc;

/// Where the stream loop hands each upstream chunk.
pub(super) trait BodyWriter: Send {
    /// Queues what the client gets for `chunk`; an error means the stream is unusable.
    fn chunk(&mut self, chunk: Bytes, tasks: &mut Vec<HttpTask>) -> Result<(), ApiError>;
    /// The upstream body ended cleanly; an error means it ended too early.
    fn end(&mut self, tasks: &mut Vec<HttpTask>) -> Result<(), ApiError>;
    /// The error event to send the client when the stream fails, if the body is a stream.
    fn fail(&mut self, e: &ApiError) -> Option<Bytes>;
    /// Sees a chunk of a sized body, which is relayed as it is.
    fn keep(&mut self, _chunk: &Bytes) {}
    /// Usage reported and text generated so far.
    fn tally(&self) -> Tally;
    /// A completed reply to keep (translated Responses streams): the Response JSON, once,
    /// and where it goes.
    fn take_final(&mut self) -> Option<(Vec<u8>, Arc<super::kept::Keep>)> {
        None
    }
    /// The reply recorded for the cache (when asked to record), once it ended whole.
    fn recorded(&mut self, _ctx: &ReplyContext<'_>) -> Option<Recorded> {
        None
    }
}

/// Same API on both sides: chunks go out as they came, watched by a meter (streams) or kept
/// by reference (complete replies, read for their usage at the end).
pub(super) struct Passthrough {
    client: Format,
    /// Streams only (a JSON reply is read for its usage at the end: no decoder made for it).
    meter: Option<Meter>,
    /// The meter could read every event so far (a passthrough stream it cannot read still
    /// reaches the client as it is, and is billed by estimate).
    watching: bool,
    kept: Vec<Bytes>,
    kept_bytes: usize,
    /// Re-framed events, when the meter rewrites the stream.
    out: BytesMut,
    /// For the cache: a stream decoded as it passes, or a whole body kept (`record`).
    recorder: Option<Recorder>,
    record_whole: bool,
}

impl Passthrough {
    pub(super) fn new(reply: &Reply, sse: bool) -> Passthrough {
        Passthrough {
            client: reply.client,
            meter: sse.then(|| Meter::new(reply.client, reply.strip_usage)),
            watching: sse,
            kept: Vec::new(),
            kept_bytes: 0,
            out: BytesMut::new(),
            recorder: None,
            record_whole: false,
        }
    }

    /// Records the reply for the cache.
    pub(super) fn record(mut self) -> Passthrough {
        if self.meter.is_some() {
            self.recorder = Some(Recorder::new(self.client));
        } else {
            self.record_whole = true;
        }
        self
    }
}

impl BodyWriter for Passthrough {
    fn chunk(&mut self, chunk: Bytes, tasks: &mut Vec<HttpTask>) -> Result<(), ApiError> {
        if let Some(r) = &mut self.recorder {
            r.push(&chunk);
        }
        let Some(meter) = &mut self.meter else {
            self.keep(&chunk);
            tasks.push(HttpTask::Body(Some(chunk), false));
            return Ok(());
        };
        if meter.rewrites() {
            // Room for the chunk at once (the re-framed events are about as long): the buffer's
            // last part went out with the previous chunk, and it grew again event by event.
            self.out.reserve(chunk.len());
            meter.push(&chunk, &mut self.out)?;
            if !self.out.is_empty() {
                tasks.push(HttpTask::Body(Some(self.out.split().freeze()), false));
            }
            return Ok(());
        } else if self.watching {
            self.watching = meter.push(&chunk, &mut self.out).is_ok();
        }
        tasks.push(HttpTask::Body(Some(chunk), false));
        Ok(())
    }

    /// A stream whose body ended cleanly before its own terminal event was cut: the client
    /// must not take it for a complete reply.
    fn end(&mut self, _tasks: &mut Vec<HttpTask>) -> Result<(), ApiError> {
        match &self.meter {
            Some(m) if self.watching && !m.ended() => Err(ApiError::stream_broken()),
            _ => Ok(()),
        }
    }

    fn keep(&mut self, chunk: &Bytes) {
        if self.kept_bytes + chunk.len() <= MAX_REPLY {
            self.kept.push(chunk.clone());
        }
        // Counted past the bound too: a body cut at it is never recorded.
        self.kept_bytes += chunk.len();
    }

    fn recorded(&mut self, ctx: &ReplyContext<'_>) -> Option<Recorded> {
        if let Some(r) = self.recorder.take() {
            let pivot = r.finish(ctx)?;
            return Some(Recorded {
                pivot: Some(pivot.into()),
                ..Default::default()
            });
        }
        if !self.record_whole || self.kept_bytes > MAX_REPLY {
            return None;
        }
        let exact = Bytes::from(self.kept.concat());
        Some(Recorded {
            pivot: formats::to_pivot(self.client, &exact, ctx),
            exact: Some(exact),
            ..Default::default()
        })
    }

    fn tally(&self) -> Tally {
        if let Some(m) = &self.meter {
            return m.tally();
        }
        let usage = match self.kept.as_slice() {
            [one] => formats::reply_usage(self.client, one),
            many => formats::reply_usage(self.client, &many.concat()),
        };
        Tally {
            usage,
            generated_bytes: 0,
        }
    }

    fn fail(&mut self, e: &ApiError) -> Option<Bytes> {
        let m = self.meter.as_ref()?;
        let mut out = BytesMut::new();
        formats::render_error_event(self.client, e, m.next_sequence(), &mut out);
        Some(out.freeze())
    }
}

/// Different APIs: each chunk is translated as it arrives; whatever it completes goes out.
pub(super) struct Translating {
    t: Translator,
    out: BytesMut,
    keep: Option<Arc<super::kept::Keep>>,
}

impl Translating {
    pub(super) fn new(t: Translator, keep: Option<Arc<super::kept::Keep>>) -> Translating {
        Translating {
            t,
            out: BytesMut::with_capacity(4096),
            keep,
        }
    }

    fn flush(&mut self, tasks: &mut Vec<HttpTask>) {
        if !self.out.is_empty() {
            tasks.push(HttpTask::Body(Some(self.out.split().freeze()), false));
        }
    }
}

impl BodyWriter for Translating {
    fn chunk(&mut self, chunk: Bytes, tasks: &mut Vec<HttpTask>) -> Result<(), ApiError> {
        let r = self.t.push(&chunk, &mut self.out);
        self.flush(tasks);
        r
    }

    fn end(&mut self, tasks: &mut Vec<HttpTask>) -> Result<(), ApiError> {
        let r = self.t.finish(&mut self.out);
        self.flush(tasks);
        r
    }

    fn fail(&mut self, e: &ApiError) -> Option<Bytes> {
        self.t.fail(e, &mut self.out);
        (!self.out.is_empty()).then(|| self.out.split().freeze())
    }

    fn tally(&self) -> Tally {
        self.t.tally()
    }

    fn take_final(&mut self) -> Option<(Vec<u8>, Arc<super::kept::Keep>)> {
        let keep = self.keep.as_ref()?;
        Some((self.t.take_final()?, keep.clone()))
    }

    fn recorded(&mut self, ctx: &ReplyContext<'_>) -> Option<Recorded> {
        Some(Recorded {
            pivot: Some(self.t.take_collected(ctx)?.into()),
            ..Default::default()
        })
    }
}
