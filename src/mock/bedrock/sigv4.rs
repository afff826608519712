//! SigV4 verification as AWS does it: the signature is recomputed over the request as it
//! arrived (method, path as sent, the headers named in `SignedHeaders`, the body, the time in
//! `x-amz-date`, the session token) with the secret the mock knows, and compared.

use super::super::{header_str, MockSettings};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use pingora::protocols::http::ServerSession;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Why a request is refused: the error type (`x-amzn-ErrorType`) and AWS's message.
pub(in crate::mock) type Refusal = (&'static str, String);

struct Parsed<'a> {
    key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed: Vec<&'a str>,
    signature: &'a str,
}

fn parse(auth: &str) -> Option<Parsed<'_>> {
    let rest = auth.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => cred = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => sig = Some(v),
            _ => {}
        }
    }
    let mut scope = cred?.split('/');
    let parsed = Parsed {
        key_id: scope.next()?,
        date: scope.next()?,
        region: scope.next()?,
        service: scope.next()?,
        signed: signed?.split(';').collect(),
        signature: sig?,
    };
    (scope.next() == Some("aws4_request")).then_some(parsed)
}

/// `20240501T120000Z` as a time.
fn amz_time(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// Checks the request's signature when the mock has credentials; `Ok` otherwise.
pub(in crate::mock) fn verify(
    s: &ServerSession,
    body: &[u8],
    set: &MockSettings,
) -> Result<(), Refusal> {
    let (Some(want_id), Some(secret)) = (&set.aws_access_key_id, &set.aws_secret_access_key) else {
        return Ok(());
    };
    let missing = || {
        (
            "MissingAuthenticationTokenException",
            "Missing Authentication Token".to_string(),
        )
    };
    let auth = header_str(s, "authorization").ok_or_else(missing)?;
    let p = parse(auth).ok_or_else(missing)?;
    if p.key_id != want_id {
        let msg = "The security token included in the request is invalid.";
        return Err(("UnrecognizedClientException", msg.into()));
    }
    let amz_date = header_str(s, "x-amz-date").unwrap_or_default();
    let time = amz_time(amz_date).filter(|_| amz_date.starts_with(p.date));
    let Some(time) = time else {
        return Err(("IncompleteSignatureException", "Bad x-amz-date".into()));
    };
    if p.service != "bedrock" {
        return Err(("InvalidSignatureException", MISMATCH.into()));
    }
    let token = header_str(s, "x-amz-security-token").map(str::to_string);
    let identity: Identity = Credentials::new(want_id, secret, token, None, "mock").into();
    let h = s.req_header();
    let headers: Vec<(&str, &str)> = p
        .signed
        .iter()
        .filter(|n| !matches!(**n, "x-amz-date" | "x-amz-security-token"))
        .map(|n| (*n, header_str(s, n).unwrap_or_default()))
        .collect();
    let host = header_str(s, "host").unwrap_or("localhost");
    let uri = format!(
        "https://{host}{}",
        h.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let computed = (|| {
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(p.region)
            .name("bedrock")
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .ok()?
            .into();
        let req = SignableRequest::new(
            h.method.as_str(),
            &uri,
            headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .ok()?;
        Some(sign(req, &params).ok()?.into_parts().1)
    })();
    match computed {
        Some(sig) if sig == p.signature => Ok(()),
        _ => Err(("InvalidSignatureException", MISMATCH.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_authorization_and_dates() {
        let p = parse("AWS4-HMAC-SHA256 Credential=AKID/20240501/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=abc").unwrap();
        assert_eq!(
            (p.key_id, p.region, p.service),
            ("AKID", "us-east-1", "bedrock")
        );
        assert_eq!(p.signed, ["content-type", "host", "x-amz-date"]);
        assert!(parse("Bearer x").is_none());
        assert_eq!(
            amz_time("20240501T120000Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_714_564_800))
        );
        assert_eq!(
            amz_time("20000301T000000Z"),
            Some(UNIX_EPOCH + Duration::from_secs(951_868_800))
        );
        assert!(amz_time("2024-05-01").is_none());
    }
}
