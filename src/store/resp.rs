//! One Redis connection spoken to directly in RESP2, owned by whoever holds it. The limit
//! counters' group calls are made by the request that leads them (`redis.rs`): the command
//! is written and its reply read in that request's own task, with no driver task between
//! (redis-rs's multiplexed connection hands every call to one, two wake-ups each way).
//!
//! A call abandoned half way (its budget ran out) leaves the connection usable: the replies
//! still owed are read and dropped before the next call's own. Only a command cut off while
//! being written leaves it unusable ([`Conn::usable`]).

use redis::{ConnectionAddr, ConnectionInfo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What Redis answered, or why there is no answer.
#[derive(Debug, thiserror::Error)]
pub enum RespError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Redis answered with an error (`-ERR …`, `-NOSCRIPT …`).
    #[error("{0}")]
    Server(String),
    #[error("malformed reply ({0})")]
    Protocol(&'static str),
    /// Not connected, or no answer in time.
    #[error("{0}")]
    Unavailable(String),
}

impl RespError {
    /// Whether Redis answered (the connection is in step).
    pub fn answered(&self) -> bool {
        matches!(self, RespError::Server(_))
    }
}

/// One reply (RESP2; an error reply is [`RespError::Server`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Status(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
    /// An error inside an array (at the top, a reply's error is [`RespError::Server`]).
    Error(String),
}

impl Reply {
    /// A number, from an integer or a bulk string holding one.
    pub fn number(&self) -> Option<f64> {
        match self {
            Reply::Int(i) => Some(*i as f64),
            Reply::Bulk(Some(b)) => std::str::from_utf8(b).ok()?.parse().ok(),
            _ => None,
        }
    }
}

enum Io {
    Tcp(tokio::net::TcpStream),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

pub struct Conn {
    io: Io,
    /// The command being built.
    out: Vec<u8>,
    /// Bytes read and not yet parsed.
    input: Vec<u8>,
    /// Replies owed to calls that were abandoned, read and dropped before the next one.
    owed: usize,
    /// A command was cut off while being written, or a reply could not be read.
    torn: bool,
}

/// Largest bulk string or array accepted in a reply, and how deep arrays may nest.
const MAX_LEN: usize = 64 << 20;
const MAX_DEPTH: usize = 4;

impl Conn {
    /// Connects to the Redis of `info`, signs in and selects its database.
    pub async fn connect(info: &ConnectionInfo) -> Result<Conn, RespError> {
        let io = match &info.addr {
            ConnectionAddr::Tcp(host, port) => {
                let s = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                s.set_nodelay(true)?;
                Io::Tcp(s)
            }
            #[cfg(unix)]
            ConnectionAddr::Unix(path) => Io::Unix(tokio::net::UnixStream::connect(path).await?),
            _ => {
                return Err(RespError::Unavailable(
                    "TLS to Redis is not built in".into(),
                ))
            }
        };
        let mut c = Conn {
            io,
            out: Vec::with_capacity(1024),
            input: Vec::with_capacity(1024),
            owed: 0,
            torn: false,
        };
        let r = &info.redis;
        if let Some(password) = &r.password {
            match &r.username {
                Some(user) => c.command(3).arg("AUTH").arg(user).arg(password),
                None => c.command(2).arg("AUTH").arg(password),
            };
            c.call().await?;
        }
        if r.db != 0 {
            c.command(2).arg("SELECT").arg(r.db);
            c.call().await?;
        }
        c.command(1).arg("PING");
        c.call().await?;
        Ok(c)
    }

    /// Whether the connection is in step with Redis (no command cut off, no reply lost).
    pub fn usable(&self) -> bool {
        !self.torn
    }

    /// Starts a command of `parts` parts (name included), to be given by [`Command::arg`].
    pub fn command(&mut self, parts: usize) -> Command<'_> {
        self.out.clear();
        self.out.push(b'*');
        push_int(&mut self.out, parts as i64);
        self.out.extend_from_slice(b"\r\n");
        Command(&mut self.out)
    }

    /// Sends the command built and reads its reply.
    pub async fn call(&mut self) -> Result<Reply, RespError> {
        if self.torn {
            return Err(RespError::Protocol("a command was cut off"));
        }
        self.torn = true;
        match &mut self.io {
            Io::Tcp(s) => s.write_all(&self.out).await?,
            #[cfg(unix)]
            Io::Unix(s) => s.write_all(&self.out).await?,
        }
        self.torn = false;
        // Owed until read: a call dropped while waiting leaves its reply to the next.
        self.owed += 1;
        loop {
            let reply = self.read().await;
            if matches!(&reply, Err(e) if !e.answered()) {
                self.torn = true;
                return reply;
            }
            self.owed -= 1;
            if self.owed == 0 {
                return reply;
            }
        }
    }

    /// The next whole reply (an error reply as `Err`).
    async fn read(&mut self) -> Result<Reply, RespError> {
        loop {
            if let Some((reply, used)) = parse(&self.input, 0)? {
                self.input.drain(..used);
                return match reply {
                    Reply::Error(e) => Err(RespError::Server(e)),
                    r => Ok(r),
                };
            }
            self.input.reserve(4096);
            let n = match &mut self.io {
                Io::Tcp(s) => s.read_buf(&mut self.input).await?,
                #[cfg(unix)]
                Io::Unix(s) => s.read_buf(&mut self.input).await?,
            };
            if n == 0 {
                return Err(RespError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }
}

/// A command being written (see [`Conn::command`]).
pub struct Command<'c>(&'c mut Vec<u8>);

impl Command<'_> {
    /// One part: text or a number.
    pub fn arg(self, part: impl Part) -> Self {
        part.write(self.0);
        self
    }

    /// One part made of `pieces` one after another (a key from its name's pieces).
    pub fn joined(self, pieces: &[&[u8]]) -> Self {
        head(self.0, pieces.iter().map(|p| p.len()).sum());
        for p in pieces {
            self.0.extend_from_slice(p);
        }
        self.0.extend_from_slice(b"\r\n");
        self
    }
}

/// What can be a command's part.
pub trait Part {
    /// Writes the part as a bulk string.
    fn write(&self, out: &mut Vec<u8>);
}

impl<T: Part + ?Sized> Part for &T {
    fn write(&self, out: &mut Vec<u8>) {
        (**self).write(out)
    }
}

impl Part for str {
    fn write(&self, out: &mut Vec<u8>) {
        bulk(out, self.as_bytes())
    }
}

impl Part for String {
    fn write(&self, out: &mut Vec<u8>) {
        bulk(out, self.as_bytes())
    }
}

impl Part for i64 {
    fn write(&self, out: &mut Vec<u8>) {
        bulk(out, itoa::Buffer::new().format(*self).as_bytes())
    }
}

impl Part for usize {
    fn write(&self, out: &mut Vec<u8>) {
        bulk(out, itoa::Buffer::new().format(*self).as_bytes())
    }
}

impl Part for f64 {
    /// A whole number as an integer (most limits and amounts are: counts of requests and
    /// tokens), else the shortest text that reads back as the same number, as redis-rs
    /// writes it; Lua's `tonumber` and `INCRBYFLOAT` read both. An amount is never infinite
    /// or NaN; one would be sent as 0.
    fn write(&self, out: &mut Vec<u8>) {
        let v = if self.is_finite() { *self } else { 0.0 };
        if v.fract() == 0.0 && v.abs() < 9e15 {
            bulk(out, itoa::Buffer::new().format(v as i64).as_bytes())
        } else {
            bulk(out, ryu::Buffer::new().format_finite(v).as_bytes())
        }
    }
}

/// A bulk string's head: `$`, its length.
fn head(out: &mut Vec<u8>, len: usize) {
    out.push(b'$');
    out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    head(out, bytes.len());
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

fn push_int(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// One reply from the start of `input` and how many bytes it took, or `None` if it is not
/// all there yet. Refuses what is not RESP2 (the connection is then out of step).
fn parse(input: &[u8], depth: usize) -> Result<Option<(Reply, usize)>, RespError> {
    let Some(end) = input.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    if end == 0 {
        return Err(RespError::Protocol("empty line"));
    }
    let line = &input[1..end];
    let text = || std::str::from_utf8(line).map_err(|_| RespError::Protocol("not UTF-8"));
    let int = || -> Result<i64, RespError> {
        text()?
            .parse()
            .map_err(|_| RespError::Protocol("not an integer"))
    };
    let length = |n: i64| -> Result<usize, RespError> {
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= MAX_LEN)
            .ok_or(RespError::Protocol("length out of range"))
    };
    let head = end + 2;
    let reply = match input[0] {
        b'+' => Reply::Status(text()?.to_owned()),
        b'-' => Reply::Error(text()?.to_owned()),
        b':' => Reply::Int(int()?),
        b'$' | b'*' if int()? == -1 => Reply::Bulk(None),
        b'$' => {
            let n = length(int()?)?;
            let Some(body) = input.get(head..head + n + 2) else {
                return Ok(None);
            };
            if !body.ends_with(b"\r\n") {
                return Err(RespError::Protocol("bulk string not terminated"));
            }
            let body = body[..n].to_vec();
            return Ok(Some((Reply::Bulk(Some(body)), head + n + 2)));
        }
        b'*' if depth < MAX_DEPTH => {
            let n = length(int()?)?;
            let (mut items, mut at) = (Vec::with_capacity(n.min(1024)), head);
            for _ in 0..n {
                let Some((item, used)) = parse(&input[at..], depth + 1)? else {
                    return Ok(None);
                };
                items.push(item);
                at += used;
            }
            return Ok(Some((Reply::Array(items), at)));
        }
        _ => return Err(RespError::Protocol("unknown reply type or too deep")),
    };
    Ok(Some((reply, head)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A command as this module writes it.
    fn written(build: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        build(&mut out);
        out
    }

    #[test]
    fn commands_are_written_as_redis_rs_writes_them() {
        let ours = written(|out| {
            out.extend_from_slice(b"*9\r\n");
            Command(out)
                .arg("EVALSHA")
                .arg(String::from("ab12"))
                .arg(2usize)
                .joined(&[b"tollgate:", b"key:a", b":", b"1700000000"])
                .arg("ü")
                .arg(-6.0)
                .arg(0.1 + 0.2)
                .arg(1e21)
                .arg(-3600i64);
        });
        let mut theirs = redis::cmd("EVALSHA");
        theirs
            .arg("ab12")
            .arg(2)
            .arg("tollgate:key:a:1700000000")
            .arg("ü");
        // Whole numbers as integers, others as redis-rs writes them.
        theirs.arg(-6).arg(0.1 + 0.2).arg(1e21).arg(-3600);
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            String::from_utf8(theirs.get_packed_command()).unwrap()
        );
    }

    #[test]
    fn a_number_that_is_not_finite_is_sent_as_zero() {
        let out = written(|out| {
            Command(out).arg(f64::NAN).arg(f64::INFINITY);
        });
        assert_eq!(out, b"$1\r\n0\r\n$1\r\n0\r\n");
    }

    const REPLY: &[u8] = b"*5\r\n:0\r\n$2\r\n94\r\n$-1\r\n*2\r\n+OK\r\n-ERR inner\r\n$0\r\n\r\n";

    #[test]
    fn a_reply_is_read_whole_at_every_split_and_not_before() {
        let want = Reply::Array(vec![
            Reply::Int(0),
            Reply::Bulk(Some(b"94".to_vec())),
            Reply::Bulk(None),
            Reply::Array(vec![
                Reply::Status("OK".into()),
                Reply::Error("ERR inner".into()),
            ]),
            Reply::Bulk(Some(Vec::new())),
        ]);
        for cut in 0..REPLY.len() {
            assert_eq!(parse(&REPLY[..cut], 0).unwrap(), None, "cut at {cut}");
        }
        let mut two = REPLY.to_vec();
        two.extend_from_slice(b":7\r\n");
        assert_eq!(parse(&two, 0).unwrap(), Some((want, REPLY.len())));
        assert_eq!(
            parse(&two[REPLY.len()..], 0).unwrap(),
            Some((Reply::Int(7), 4))
        );
    }

    #[test]
    fn numbers_are_read_from_integers_and_bulk_strings() {
        assert_eq!(Reply::Int(-3).number(), Some(-3.0));
        assert_eq!(
            Reply::Bulk(Some(b"0.30000000000000004".to_vec())).number(),
            Some(0.1 + 0.2)
        );
        assert_eq!(Reply::Bulk(Some(b"x".to_vec())).number(), None);
        assert_eq!(Reply::Bulk(None).number(), None);
        assert_eq!(Reply::Status("1".into()).number(), None);
    }

    #[test]
    fn what_is_not_resp2_is_refused() {
        for bad in [
            &b"?1\r\n"[..],
            b"\r\n",
            b":x\r\n",
            b"$3\r\nabcd\r\n",
            b"$-2\r\n",
            b"$99999999999\r\n",
            b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
            b"+\xff\r\n",
        ] {
            assert!(parse(bad, 0).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    /// A server that answers `PING`, and `ECHO x` with `x`, the first `ECHO` late.
    async fn slow_server() -> ConnectionInfo {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let (mut buf, mut late) = (vec![0u8; 256], true);
            while let Ok(n) = s.read(&mut buf).await {
                let got = String::from_utf8_lossy(&buf[..n]).into_owned();
                if n == 0 {
                    return;
                }
                if got.contains("PING") {
                    s.write_all(b"+PONG\r\n").await.unwrap();
                } else if let Some(word) = got
                    .strip_suffix("\r\n")
                    .and_then(|g| g.rsplit("\r\n").next())
                {
                    if std::mem::take(&mut late) {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    let reply = format!("${}\r\n{word}\r\n", word.len());
                    s.write_all(reply.as_bytes()).await.unwrap();
                }
            }
        });
        redis::Client::open(url)
            .unwrap()
            .get_connection_info()
            .clone()
    }

    use std::time::Duration;

    #[tokio::test]
    async fn a_call_given_up_on_leaves_its_reply_to_be_skipped_by_the_next() {
        let mut c = Conn::connect(&slow_server().await).await.unwrap();
        c.command(2).arg("ECHO").arg("first");
        let given_up = tokio::time::timeout(Duration::from_millis(50), c.call()).await;
        assert!(given_up.is_err(), "the first answer is late");
        assert!(c.usable());
        c.command(2).arg("ECHO").arg("second");
        assert_eq!(
            c.call().await.unwrap(),
            Reply::Bulk(Some(b"second".to_vec()))
        );
        c.command(2).arg("ECHO").arg("third");
        assert_eq!(
            c.call().await.unwrap(),
            Reply::Bulk(Some(b"third".to_vec()))
        );
    }
}
