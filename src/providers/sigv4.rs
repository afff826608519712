//! SigV4 for Bedrock requests. aws-sigv4's `sign` builds a URI, a header map, a dozen strings
//! and the day's signing key (four HMACs) for every request: ~12 µs of a Bedrock request's
//! ~80 µs of gateway CPU (`perf`, 2026-12-05). Here the canonical request is written straight
//! into one buffer and the signing key is derived once a day, with the crate's own primitives
//! (`generate_signing_key`, `calculate_signature`). Requests outside the shape written here (a
//! query, dot segments or empty segments in the path, header values needing trimming) go through
//! the crate's `sign` instead; the tests compare both on many requests.

use crate::clock::civil_from_days;
use arc_swap::ArcSwap;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use pingora::http::RequestHeader;
use pingora::{Error, ErrorType};
use sha2::{Digest, Sha256};
use std::fmt::Display;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

const X_AMZ_DATE: HeaderName = HeaderName::from_static("x-amz-date");
const X_AMZ_SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-amz-security-token");

/// A day's signing key: (days since 1970-01-01, key).
type DayKey = (u64, [u8; 32]);

pub(super) struct Signer {
    creds: Credentials,
    /// The same credentials as the crate's `sign` takes them.
    identity: Identity,
    region: Box<str>,
    service: &'static str,
    /// The key of the day last signed in; a request on another day derives and swaps in its
    /// own (two racing requests derive the same key).
    key: ArcSwap<DayKey>,
}

impl Signer {
    pub(super) fn new(creds: Credentials, region: &str, service: &'static str) -> Signer {
        Signer {
            identity: creds.clone().into(),
            creds,
            region: region.into(),
            service,
            // Day 0 is never today: the first request derives its key.
            key: ArcSwap::from_pointee((0, [0; 32])),
        }
    }

    /// Signs `req` at `time`: only `host`, `content-type` and what signing adds are signed, so
    /// headers added on the way (by Pingora or a proxy) cannot break the signature.
    pub(super) fn sign(
        &self,
        req: &mut RequestHeader,
        body: &[u8],
        time: SystemTime,
    ) -> pingora::Result<()> {
        let host = header(req, &HOST);
        let ctype = header(req, &CONTENT_TYPE);
        let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let plain_uri = plain_path(req.uri.path()) && req.uri.query().is_none();
        if !plain_uri || host.is_empty() || !plain(host) || !plain(ctype) {
            return self.sign_with_crate(req, body, time);
        }
        let date = amz_date(secs);
        let (day, stamp) = (secs / 86_400, as_str(&date[..8]));
        let token = self.creds.session_token();
        let signed = match (ctype.is_empty(), token.is_some()) {
            (true, false) => "host;x-amz-date",
            (true, true) => "host;x-amz-date;x-amz-security-token",
            (false, false) => "content-type;host;x-amz-date",
            (false, true) => "content-type;host;x-amz-date;x-amz-security-token",
        };
        let mut c = String::with_capacity(320 + req.uri.path().len());
        c.push_str(req.method.as_str());
        c.push('\n');
        encode_path(&mut c, req.uri.path());
        c.push_str("\n\n");
        if !ctype.is_empty() {
            line(&mut c, &["content-type:", ctype]);
        }
        line(&mut c, &["host:", host]);
        line(&mut c, &["x-amz-date:", as_str(&date)]);
        if let Some(t) = token {
            line(&mut c, &["x-amz-security-token:", t]);
        }
        c.push('\n');
        line(&mut c, &[signed]);
        c.push_str(as_str(&sha256_hex(body)));
        let scope = [
            stamp,
            "/",
            &self.region[..],
            "/",
            self.service,
            "/aws4_request",
        ];
        let mut sts = String::with_capacity(160);
        line(&mut sts, &["AWS4-HMAC-SHA256"]);
        line(&mut sts, &[as_str(&date)]);
        line(&mut sts, &scope);
        sts.push_str(as_str(&sha256_hex(c.as_bytes())));
        let signature = v4::calculate_signature(self.day_key(day, time), sts.as_bytes());
        let mut auth = String::with_capacity(200);
        auth.push_str("AWS4-HMAC-SHA256 Credential=");
        auth.push_str(self.creds.access_key_id());
        auth.push('/');
        scope.iter().for_each(|s| auth.push_str(s));
        for s in [", SignedHeaders=", signed, ", Signature=", &signature] {
            auth.push_str(s);
        }
        let date = HeaderValue::from_bytes(&date).map_err(|e| fail("header", &e))?;
        req.insert_header(X_AMZ_DATE, date)?;
        insert_secret(req, AUTHORIZATION, &auth)?;
        if let Some(t) = token {
            insert_secret(req, X_AMZ_SECURITY_TOKEN, t)?;
        }
        Ok(())
    }

    /// The day's signing key, derived when the day changed.
    fn day_key(&self, day: u64, time: SystemTime) -> [u8; 32] {
        let held = self.key.load();
        if held.0 == day {
            return held.1;
        }
        let secret = self.creds.secret_access_key();
        let derived = v4::generate_signing_key(secret, time, &self.region, self.service);
        let mut key = [0; 32];
        key.copy_from_slice(derived.as_ref());
        self.key.store(Arc::new((day, key)));
        key
    }

    /// The crate's own signing, for what [`Signer::sign`] does not write itself.
    fn sign_with_crate(
        &self,
        req: &mut RequestHeader,
        body: &[u8],
        time: SystemTime,
    ) -> pingora::Result<()> {
        let host = header(req, &HOST).to_string();
        let ctype = header(req, &CONTENT_TYPE).to_string();
        let uri = format!("https://{host}{}", req.uri);
        let mut signed = vec![("host", host.as_str())];
        if !ctype.is_empty() {
            signed.push(("content-type", ctype.as_str()));
        }
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name(self.service)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| fail("parameters", &e))?
            .into();
        let signable = SignableRequest::new(
            req.method.as_str(),
            &uri,
            signed.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| fail("request", &e))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| fail("signing", &e))?
            .into_parts();
        for (name, value) in instructions.headers() {
            let mut v = HeaderValue::from_str(value).map_err(|e| fail("header", &e))?;
            v.set_sensitive(name == "authorization" || name == "x-amz-security-token");
            req.insert_header(name.to_string(), v)?;
        }
        Ok(())
    }
}

fn fail(what: &str, e: &dyn Display) -> Box<Error> {
    Error::explain(ErrorType::InternalError, format!("SigV4 {what}: {e}"))
}

fn header<'a>(req: &'a RequestHeader, name: &HeaderName) -> &'a str {
    (req.headers.get(name))
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn insert_secret(req: &mut RequestHeader, name: HeaderName, value: &str) -> pingora::Result<()> {
    let mut v = HeaderValue::from_str(value).map_err(|e| fail("header", &e))?;
    v.set_sensitive(true);
    req.insert_header(name, v)
}

/// `parts` and a newline.
fn line(out: &mut String, parts: &[&str]) {
    parts.iter().for_each(|p| out.push_str(p));
    out.push('\n');
}

/// A header value SigV4 signs as it is: no space at either end and no run of spaces (the
/// crate trims and collapses those).
fn plain(v: &str) -> bool {
    !v.starts_with(' ') && !v.ends_with(' ') && !v.contains("  ") && !v.contains('\t')
}

/// An absolute path without empty, `.` or `..` segments: one SigV4's normalization leaves as
/// it is.
fn plain_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    rest.split('/')
        .all(|s| !s.is_empty() && s != "." && s != "..")
}

/// The path percent-encoded again, as SigV4 signs it for every service but S3: every byte but
/// ASCII letters, digits, `-._~` and `/` (aws-smithy-http's greedy label set: `%` of the
/// first encoding becomes `%25`).
fn encode_path(out: &mut String, path: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in path.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

fn sha256_hex(data: &[u8]) -> [u8; 64] {
    let mut out = [0; 64];
    // 32 bytes always fit 64 hex digits.
    let _ = hex::encode_to_slice(Sha256::digest(data), &mut out);
    out
}

/// ASCII this module wrote.
fn as_str(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or_default()
}

/// `YYYYMMDD'T'HHMMSS'Z'` of unix seconds.
fn amz_date(secs: u64) -> [u8; 16] {
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let in_day = secs % 86_400;
    let mut out = *b"00000000T000000Z";
    let mut put = |at: usize, width: usize, mut v: u64| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y.clamp(0, 9999) as u64);
    put(4, 2, mo.into());
    put(6, 2, d.into());
    put(9, 2, in_day / 3600);
    put(11, 2, in_day / 60 % 60);
    put(13, 2, in_day % 60);
    out
}

#[cfg(test)]
#[path = "sigv4_tests.rs"]
mod tests;
