//! Stored replies streamed again, and streams recorded to be stored. A reply is kept as the
//! pivot's chat completion (`formats::openai::collect`); [`replay`] writes it as a client's
//! stream with the encoders a live stream goes through. Translated streams are recorded by
//! [`super::Translator::collecting`]; streams that pass through in the client's own API, which
//! the relay does not decode, by a [`Recorder`] on the side.

use super::{Decoder, Encoder, Tally};
use crate::error::ApiError;
use crate::formats::openai::collect::Collect;
use crate::formats::openai::replay as pivot_replay;
use crate::formats::{Format, ReplyContext};
use bytes::BytesMut;

/// Writes the stored pivot reply `pivot` to `out` as a whole stream in the client's API (`to`),
/// under the reply id `id` (the client's ids derive from it: a fresh one per replay; empty for
/// random ones; a Response always gets a random one, as live ones do). `include_usage`: the OpenAI client asked for the usage chunk. Returns the
/// usage the reply reports. An unreadable reply is an error, and nothing is written.
pub fn replay(
    to: Format,
    ctx: &ReplyContext<'_>,
    include_usage: bool,
    pivot: &[u8],
    id: &str,
    out: &mut BytesMut,
) -> Result<Tally, ApiError> {
    let mut encoder = Encoder::new(to, ctx, include_usage);
    replay_into(&mut encoder, pivot, id, out)
}

/// [`replay`] for a Responses client whose reply is kept (`store`): also the final Response
/// the stream ended with, ids and all, for the gateway's response store.
pub fn replay_kept(
    ctx: &ReplyContext<'_>,
    pivot: &[u8],
    id: &str,
    out: &mut BytesMut,
) -> Result<(Tally, Option<Vec<u8>>), ApiError> {
    let mut encoder = match Encoder::new(Format::Responses, ctx, false) {
        Encoder::Responses(e) => Encoder::Responses(e.keeping(true)),
        other => other,
    };
    let tally = replay_into(&mut encoder, pivot, id, out)?;
    Ok((tally, encoder.take_final()))
}

fn replay_into(
    encoder: &mut Encoder,
    pivot: &[u8],
    id: &str,
    out: &mut BytesMut,
) -> Result<Tally, ApiError> {
    let mut tally = Tally::default();
    pivot_replay::replay(pivot, id, &mut |d| {
        tally.see(&d);
        encoder.write(&d, out);
    })?;
    encoder.flush(out);
    // The replay always ends with `Done`; an encoder still open would be a bug here.
    if encoder.ended() {
        Ok(tally)
    } else {
        Err(ApiError::internal())
    }
}

/// Records a stream that passes through in the client's own API as the pivot's chat
/// completion, decoding it on the side with the decoder a translated stream would use. It
/// gives up quietly on anything it cannot read: the client's stream is not its business.
pub struct Recorder {
    decoder: Decoder,
    /// `None` once it gave up.
    collect: Option<Box<Collect>>,
}

impl Recorder {
    /// A recorder of an upstream stream in `format`.
    pub fn new(format: Format) -> Recorder {
        Recorder {
            decoder: Decoder::new(format),
            collect: Some(Box::default()),
        }
    }

    /// Reads the next chunk of the stream as it was sent to the client.
    pub fn push(&mut self, chunk: &[u8]) {
        let Some(c) = self.collect.as_mut() else {
            return;
        };
        if self.decoder.push(chunk, &mut |d| c.see(&d)).is_err() {
            self.collect = None;
        }
    }

    /// The reply as the pivot's chat completion, if the stream completed (its finish and end
    /// seen, no error, nothing unreadable).
    pub fn finish(mut self, ctx: &ReplyContext<'_>) -> Option<Vec<u8>> {
        let mut c = self.collect.take()?;
        self.decoder.end(&mut |d| c.see(&d));
        c.finish(ctx)
    }
}
