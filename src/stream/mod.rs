//! Incremental stream decoding and translation. [`Translator`] joins the framing (size-limited
//! SSE, or AWS's binary event stream for Bedrock), the upstream format's event decoder and the
//! client format's encoder; the relay feeds it each upstream chunk as it arrives and writes
//! what comes out.

mod meter;
mod replay;

pub use meter::{Meter, Tally};
pub use replay::{replay, replay_kept, Recorder};

use crate::error::ApiError;
use crate::formats::anthropic::stream::{EventDecoder, EventEncoder};
use crate::formats::framing::eventstream::FrameDecoder;
use crate::formats::framing::sse::{SseDecoder, TooLarge};
use crate::formats::openai::collect::Collect;
use crate::formats::openai::stream::{ChunkDecoder, ChunkEncoder};
use crate::formats::{bedrock, gemini, responses};
use crate::formats::{Delta, Format, ReplyContext};
use bytes::BytesMut;

/// An upstream stream's framing and event decoder.
enum Decoder {
    OpenAi(SseDecoder, ChunkDecoder),
    Anthropic(SseDecoder, EventDecoder),
    Gemini(SseDecoder, gemini::stream::ChunkDecoder),
    Bedrock(FrameDecoder, bedrock::stream::EventDecoder),
    Responses(SseDecoder, responses::stream::EventDecoder),
}

impl Decoder {
    fn new(from: Format) -> Decoder {
        let sse = SseDecoder::default;
        match from {
            Format::OpenAi => Decoder::OpenAi(sse(), ChunkDecoder::default()),
            Format::Anthropic => Decoder::Anthropic(sse(), EventDecoder::default()),
            Format::Gemini => Decoder::Gemini(sse(), Default::default()),
            Format::Bedrock => Decoder::Bedrock(FrameDecoder::default(), Default::default()),
            Format::Responses => Decoder::Responses(sse(), Default::default()),
        }
    }

    fn push(&mut self, chunk: &[u8], emit: &mut impl FnMut(Delta<'_>)) -> Result<(), ApiError> {
        match self {
            Decoder::OpenAi(sse, dec) => sse.push(chunk, |ev| dec.event(ev.data, emit)),
            Decoder::Anthropic(sse, dec) => sse.push(chunk, |ev| dec.event(ev.data, emit)),
            Decoder::Gemini(sse, dec) => sse.push(chunk, |ev| dec.event(ev.data, emit)),
            Decoder::Bedrock(frames, dec) => frames.push(chunk, |f| dec.frame(f, emit)),
            Decoder::Responses(sse, dec) => sse.push(chunk, |ev| dec.event(ev.data, emit)),
        }
    }

    /// The last event's `sequence_number` (Responses streams number their events).
    fn last_sequence(&self) -> Option<u64> {
        match self {
            Decoder::Responses(_, dec) => dec.last_sequence,
            _ => None,
        }
    }

    /// The body ended: formats without a closing event decide here whether it was complete.
    fn end(&mut self, emit: &mut impl FnMut(Delta<'_>)) {
        match self {
            Decoder::Gemini(_, dec) => dec.end(emit),
            // Bytes of an unfinished frame: cut short, whatever came before.
            Decoder::Bedrock(frames, dec) if !frames.pending() => dec.end(emit),
            _ => {}
        }
    }
}

enum Encoder {
    OpenAi(ChunkEncoder),
    Anthropic(EventEncoder),
    Responses(responses::stream::EventEncoder),
}

impl Encoder {
    /// The client's encoder (`to`: clients speak OpenAI's chat or Responses, or Anthropic's).
    fn new(to: Format, ctx: &ReplyContext<'_>, include_usage: bool) -> Encoder {
        match to {
            Format::Anthropic => Encoder::Anthropic(EventEncoder::new(ctx.client_model)),
            Format::Responses => Encoder::Responses(
                responses::stream::EventEncoder::new(ctx.client_model, ctx.created)
                    .with_tool_names(ctx.tool_names.cloned()),
            ),
            _ => Encoder::OpenAi(ChunkEncoder::new(
                ctx.client_model,
                ctx.created,
                include_usage,
            )),
        }
    }

    fn write(&mut self, d: &Delta<'_>, out: &mut BytesMut) {
        match self {
            Encoder::OpenAi(e) => e.write(d, out),
            Encoder::Anthropic(e) => e.write(d, out),
            Encoder::Responses(e) => e.write(d, out),
        }
    }

    fn error(&mut self, err: &ApiError, out: &mut BytesMut) {
        match self {
            Encoder::OpenAi(e) => e.error(err, out),
            Encoder::Anthropic(e) => e.error(err, out),
            Encoder::Responses(e) => e.error(err, out),
        }
    }

    /// The final Response of a completed Responses stream, once (when it is to be kept).
    fn take_final(&mut self) -> Option<Vec<u8>> {
        match self {
            Encoder::Responses(e) => e.take_final(),
            _ => None,
        }
    }

    /// The upstream chunk was read (Anthropic's `message_start` waits for it).
    fn flush(&mut self, out: &mut BytesMut) {
        if let Encoder::Anthropic(e) = self {
            e.flush(out);
        }
    }

    fn ended(&self) -> bool {
        match self {
            Encoder::OpenAi(e) => e.ended(),
            Encoder::Anthropic(e) => e.ended(),
            Encoder::Responses(e) => e.ended(),
        }
    }
}

impl From<TooLarge> for ApiError {
    fn from(e: TooLarge) -> Self {
        ApiError::bad_upstream(format!("The upstream stream is unreadable: {e}."))
    }
}

/// Translates an upstream event stream (`from`) into the client's (`to`), chunk by chunk.
pub struct Translator {
    decoder: Decoder,
    encoder: Encoder,
    tally: Tally,
    /// The reply so far, when it is to be kept ([`Self::collecting`]).
    collect: Option<Box<Collect>>,
}

impl Translator {
    /// `include_usage`: the OpenAI client asked for the final usage chunk.
    pub fn new(from: Format, to: Format, ctx: &ReplyContext<'_>, include_usage: bool) -> Self {
        Translator {
            decoder: Decoder::new(from),
            encoder: Encoder::new(to, ctx, include_usage),
            tally: Tally::default(),
            collect: None,
        }
    }

    /// Decodes `chunk` and appends the client's events to `out`. An error means the upstream
    /// stream cannot be read further; the caller ends the client's stream with [`Self::fail`].
    pub fn push(&mut self, chunk: &[u8], out: &mut BytesMut) -> Result<(), ApiError> {
        let Translator {
            decoder,
            encoder,
            tally,
            collect,
        } = self;
        let read = decoder.push(chunk, &mut |d: Delta<'_>| {
            tally.see(&d);
            if let Some(c) = collect {
                c.see(&d);
            }
            encoder.write(&d, out);
        });
        if let Err(e) = read {
            // What could not be read is not in the collected reply: nothing to keep.
            *collect = None;
            return Err(e);
        }
        encoder.flush(out);
        Ok(())
    }

    /// The upstream body ended; the client's closing events (if the format ends by closing the
    /// body) go to `out`. A stream that ended without its closing event was cut short: that is
    /// an error for the caller to report with [`Self::fail`].
    pub fn finish(&mut self, out: &mut BytesMut) -> Result<(), ApiError> {
        let Translator {
            decoder,
            encoder,
            tally,
            collect,
        } = self;
        decoder.end(&mut |d: Delta<'_>| {
            tally.see(&d);
            if let Some(c) = collect {
                c.see(&d);
            }
            encoder.write(&d, out);
        });
        if self.encoder.ended() {
            Ok(())
        } else {
            Err(ApiError::stream_broken())
        }
    }

    /// Ends the client's stream with `e` as an error event in its API (unless it has ended).
    pub fn fail(&mut self, e: &ApiError, out: &mut BytesMut) {
        self.encoder.error(e, out);
        self.collect = None;
    }

    /// Also collects the reply as the pivot's chat completion, for [`Self::take_collected`].
    pub fn collecting(mut self) -> Self {
        self.collect = Some(Box::default());
        self
    }

    /// The collected reply as the pivot's chat completion (see [`Self::collecting`]), once,
    /// and only if the upstream stream completed: its finish and end seen, no error.
    pub fn take_collected(&mut self, ctx: &ReplyContext<'_>) -> Option<Vec<u8>> {
        self.collect.take()?.finish(ctx)
    }

    /// Keeps a Responses client's final Response for [`Self::take_final`].
    pub fn keeping(mut self) -> Self {
        if let Encoder::Responses(e) = self.encoder {
            self.encoder = Encoder::Responses(e.keeping(true));
        }
        self
    }

    /// A Responses client's final Response, once its stream completed (see [`Self::keeping`]).
    pub fn take_final(&mut self) -> Option<Vec<u8>> {
        self.encoder.take_final()
    }

    /// What the upstream reported and generated so far.
    pub fn tally(&self) -> Tally {
        self.tally
    }
}

#[cfg(test)]
mod tests;
