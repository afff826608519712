//! An incremental Server-Sent Events decoder (the WHATWG event-stream rules): lines end in LF,
//! CRLF or CR (a CR at the end of one chunk and an LF at the start of the next are one line
//! end), `:` starts a comment, `data:` with or without a space, several `data` lines join with
//! LF, a blank line dispatches. Bytes arrive in arbitrary pieces; an event larger than the limit
//! is an error, so a hostile upstream cannot grow memory without bound. Buffers are reused:
//! decoding allocates nothing per event.

/// One dispatched event. `event` is empty when the stream named none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    pub event: &'a [u8],
    pub data: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a server-sent event is larger than {0} bytes")]
pub struct TooLarge(pub usize);

pub struct SseDecoder {
    max: usize,
    /// An incomplete line carried over from the previous chunk.
    partial: Vec<u8>,
    event: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
    /// The last chunk ended in CR: an LF starting the next one belongs to that line end.
    after_cr: bool,
}

/// The default limit for one event: far above any LLM stream event, far below memory trouble.
pub const DEFAULT_MAX_EVENT: usize = 4 * 1024 * 1024;

impl Default for SseDecoder {
    fn default() -> Self {
        SseDecoder::new(DEFAULT_MAX_EVENT)
    }
}

impl SseDecoder {
    pub fn new(max_event_bytes: usize) -> SseDecoder {
        SseDecoder {
            max: max_event_bytes,
            partial: Vec::new(),
            event: Vec::new(),
            // Most events are handed on from their chunk: this fills only for an event split
            // across chunks or of several lines.
            data: Vec::new(),
            has_data: false,
            after_cr: false,
        }
    }

    /// Feeds bytes; calls `f` for every event they complete. `f`'s error stops decoding.
    pub fn push<E: From<TooLarge>>(
        &mut self,
        mut chunk: &[u8],
        mut f: impl FnMut(SseEvent<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if chunk.is_empty() {
            return Ok(());
        }
        if self.after_cr && chunk[0] == b'\n' {
            chunk = &chunk[1..];
        }
        self.after_cr = false;
        while let Some(i) = memchr::memchr2(b'\n', b'\r', chunk) {
            let ends_in_cr = chunk[i] == b'\r';
            let mut next = i + 1;
            if ends_in_cr {
                match chunk.get(next) {
                    Some(b'\n') => next += 1,
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
            if self.partial.is_empty() {
                // A whole one-line event (nearly every LLM stream event): dispatched from the
                // chunk itself, not copied into `data` first.
                if let Some((data, after)) = self.whole_event(chunk, i, next) {
                    if data.len() + self.event.len() > self.max {
                        return Err(TooLarge(self.max).into());
                    }
                    let r = f(SseEvent {
                        event: &self.event,
                        data,
                    });
                    self.event.clear();
                    r?;
                    chunk = &chunk[after..];
                    continue;
                }
                self.line(&chunk[..i], &mut f)?;
            } else {
                self.partial.extend_from_slice(&chunk[..i]);
                let line = std::mem::take(&mut self.partial);
                let r = self.line(&line, &mut f);
                self.partial = line;
                self.partial.clear();
                r?;
            }
            chunk = &chunk[next..];
        }
        if self.partial.len() + chunk.len() > self.max {
            return Err(TooLarge(self.max).into());
        }
        self.partial.extend_from_slice(chunk);
        Ok(())
    }

    /// The data of the line ending at `end` (the next line at `next`) and where the rest of
    /// `chunk` starts, when it is a `data` line that starts an event and a blank line follows
    /// it in the chunk.
    fn whole_event<'c>(
        &self,
        chunk: &'c [u8],
        end: usize,
        next: usize,
    ) -> Option<(&'c [u8], usize)> {
        if self.has_data {
            return None;
        }
        let data = data_value(chunk.get(..end)?)?;
        let after = match chunk.get(next..)? {
            [b'\r', b'\n', ..] => next + 2,
            // A CR that is half of a CRLF split across chunks leaves its LF to read as one
            // more blank line, which dispatches nothing.
            [b'\n' | b'\r', ..] => next + 1,
            _ => return None,
        };
        Some((data, after))
    }

    /// Whether an event was begun but not completed (bytes after the last blank line).
    pub fn has_pending(&self) -> bool {
        self.has_data || !self.partial.is_empty()
    }

    fn line<E: From<TooLarge>>(
        &mut self,
        line: &[u8],
        f: &mut impl FnMut(SseEvent<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if line.is_empty() {
            return self.dispatch(f);
        }
        if line[0] == b':' {
            return Ok(());
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => {
                self.event.clear();
                self.event.extend_from_slice(value);
            }
            _ => {}
        }
        if self.data.len() + self.event.len() > self.max {
            return Err(TooLarge(self.max).into());
        }
        Ok(())
    }

    fn dispatch<E>(&mut self, f: &mut impl FnMut(SseEvent<'_>) -> Result<(), E>) -> Result<(), E> {
        let r = if self.has_data {
            f(SseEvent {
                event: &self.event,
                data: &self.data,
            })
        } else {
            Ok(())
        };
        self.event.clear();
        self.data.clear();
        self.has_data = false;
        r
    }
}

/// A `data` line's value (one leading space dropped).
fn data_value(line: &[u8]) -> Option<&[u8]> {
    let v = line.strip_prefix(b"data:")?;
    Some(v.strip_prefix(b" ").unwrap_or(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_pieces(pieces: &[&[u8]], max: usize) -> Result<Vec<(String, String)>, TooLarge> {
        let mut d = SseDecoder::new(max);
        let mut out = Vec::new();
        for p in pieces {
            d.push(p, |e| {
                out.push((
                    String::from_utf8_lossy(e.event).into_owned(),
                    String::from_utf8_lossy(e.data).into_owned(),
                ));
                Ok::<(), TooLarge>(())
            })?;
        }
        Ok(out)
    }

    fn decode(input: &[u8]) -> Vec<(String, String)> {
        decode_pieces(&[input], 1 << 20).unwrap()
    }

    #[test]
    fn fields_comments_and_line_endings() {
        let ev = |e: &str, d: &str| (e.to_string(), d.to_string());
        assert_eq!(
            decode(b"event: a\ndata: 1\n\n: comment\ndata:2\r\n\r\ndata: x\rdata: y\r\r"),
            vec![ev("a", "1"), ev("", "2"), ev("", "x\ny")]
        );
        // No data field: nothing is dispatched; an unfinished event waits.
        assert_eq!(decode(b"event: ping\n\ndata: half"), vec![]);
        assert_eq!(
            decode(b"data\n\nid: 3\nretry: 5\ndata: z\n\n"),
            vec![ev("", ""), ev("", "z")]
        );
    }

    #[test]
    fn same_events_however_split() {
        let input: &[u8] = b"event: message_start\r\ndata: {\"a\":1}\r\n\r\n: c\r\nevent: x\ndata: l1\ndata: l2\n\ndata: [DONE]\r\r";
        let whole = decode(input);
        assert_eq!(whole.len(), 3);
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let got =
                    decode_pieces(&[&input[..i], &input[i..j], &input[j..]], 1 << 20).unwrap();
                assert_eq!(got, whole, "split at {i},{j}");
            }
        }
    }

    proptest::proptest! {
        /// Streams of data, event, comment and blank lines with any line endings decode to the
        /// same events whole (where the one-line fast path runs), split anywhere, and a byte at
        /// a time (where it never does).
        #[test]
        fn the_same_events_whole_split_or_bytewise(
            lines in proptest::collection::vec((
                proptest::prop_oneof![
                    4 => "data: ?[a-z{}\"]{0,5}",
                    3 => proptest::strategy::Just(String::new()),
                    1 => "(event: |: |id: )[a-z]{0,3}",
                ],
                "(\n|\r\n|\r)",
            ), 0..16),
            at in proptest::collection::vec(0usize..200, 0..4),
        ) {
            let input: Vec<u8> = lines.iter().flat_map(|(l, e)| [l.as_bytes(), e.as_bytes()].concat()).collect();
            let bytewise: Vec<&[u8]> = input.chunks(1).collect();
            let want = decode_pieces(&bytewise, 1 << 20).unwrap();
            proptest::prop_assert_eq!(decode(&input), want.clone());
            let mut cuts: Vec<usize> = at.into_iter().map(|a| a.min(input.len())).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut from = 0;
            for c in cuts.into_iter().chain([input.len()]) {
                pieces.push(&input[from..c]);
                from = c;
            }
            proptest::prop_assert_eq!(decode_pieces(&pieces, 1 << 20).unwrap(), want);
        }
    }

    #[test]
    fn oversized_events_are_refused() {
        assert!(decode_pieces(&[b"data: 0123456789\n"], 8).is_err());
        assert!(decode_pieces(&[b"data: 01234", b"56789"], 8).is_err());
        assert!(decode_pieces(&[b"data: 0123\n\n"], 8).is_ok());
    }
}
