//! A request sent upstream in one write. Pingora's HTTP/1 client writes and flushes the
//! header, then the body: two segments and two wake-ups of the upstream, or, corked to join
//! them, two `setsockopt` calls more a request. Here the header, as Pingora writes it
//! (`http_req_header_to_wire`), and the body leave in one vectored write (one buffer where
//! the stream cannot write vectors), and a session over the same stream reads the answer as
//! Pingora's own would.

use bytes::{Buf, Bytes, BytesMut};
use pingora::http::RequestHeader;
use pingora::protocols::http::client::HttpSession;
use pingora::protocols::http::v1::client::{http_req_header_to_wire, HttpSession as H1Session};
use pingora::protocols::Stream;
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType, OrErr, Result};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Sends `header` and `body` on `up` with the peer's timeouts; the session that reads the
/// answer. Only a body framed by a `content-length` equal to its length is written here;
/// anything else (and HTTP/2, which sends frames) goes through Pingora's own writing.
pub async fn request(
    up: HttpSession,
    header: Box<RequestHeader>,
    body: &Bytes,
    peer: &HttpPeer,
) -> Result<HttpSession> {
    let (read, write) = (peer.options.read_timeout, peer.options.write_timeout);
    let mut up = match up {
        HttpSession::H1(h1) if framed_by_length(&header, body.len()) => {
            let wire = http_req_header_to_wire(&header).ok_or_else(|| {
                Error::explain(ErrorType::InvalidHTTPHeader, "request line not writable")
            })?;
            let mut stream = h1.into_inner();
            bounded(write, one_write(&mut stream, wire, body)).await?;
            HttpSession::H1(H1Session::new_with_options(stream, peer))
        }
        mut up => {
            up.set_write_timeout(write);
            up.write_request_header(header).await?;
            up.write_request_body(body.clone(), true).await?;
            up.finish_request_body().await?;
            up
        }
    };
    up.set_read_timeout(read);
    up.set_write_timeout(write);
    Ok(up)
}

/// Whether the header frames the body by a `content-length` of exactly its length (no
/// `transfer-encoding`): then the bytes written here are the whole request.
fn framed_by_length(header: &RequestHeader, len: usize) -> bool {
    let h = &header.headers;
    let mut lengths = h.get_all(http::header::CONTENT_LENGTH).iter();
    let one = match (lengths.next(), lengths.next()) {
        (Some(v), None) => v.to_str().ok().and_then(|v| v.parse::<usize>().ok()),
        _ => None,
    };
    one == Some(len) && !h.contains_key(http::header::TRANSFER_ENCODING)
}

async fn one_write(stream: &mut Stream, mut wire: BytesMut, body: &Bytes) -> Result<()> {
    let written = if stream.is_write_vectored() {
        let mut both = (&mut wire).chain(body.clone());
        stream.write_all_buf(&mut both).await
    } else {
        wire.extend_from_slice(body);
        stream.write_all(&wire).await
    };
    written.or_err(ErrorType::WriteError, "while writing the request")?;
    // Pingora's stream may buffer writes.
    (stream.flush().await).or_err(ErrorType::WriteError, "while flushing the request")
}

/// `f` within `limit` (a write timeout, as Pingora's client bounds its writes), if any.
async fn bounded(
    limit: Option<Duration>,
    f: impl std::future::Future<Output = Result<()>>,
) -> Result<()> {
    match limit {
        None => f.await,
        Some(t) => match pingora::prelude::timeout(t, f).await {
            Ok(r) => r,
            Err(_) => Error::e_explain(ErrorType::WriteTimedout, "while writing the request"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(len: &[&str], te: bool) -> RequestHeader {
        let mut h = RequestHeader::build("POST", b"/v1/x", None).unwrap();
        for l in len {
            h.append_header("content-length", *l).unwrap();
        }
        if te {
            h.insert_header("transfer-encoding", "chunked").unwrap();
        }
        h
    }

    #[test]
    fn only_a_body_its_content_length_frames_is_written_whole() {
        assert!(framed_by_length(&header(&["5"], false), 5));
        assert!(framed_by_length(&header(&["0"], false), 0));
        assert!(!framed_by_length(&header(&["4"], false), 5));
        assert!(!framed_by_length(&header(&[], false), 0));
        assert!(!framed_by_length(&header(&["5", "5"], false), 5));
        assert!(!framed_by_length(&header(&["5"], true), 5));
        assert!(!framed_by_length(&header(&["x"], false), 5));
    }
}
