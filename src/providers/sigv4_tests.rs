use super::*;
use proptest::prelude::*;
use std::time::Duration;

fn creds(token: Option<&str>) -> Credentials {
    Credentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        token.map(str::to_string),
        None,
        "test",
    )
}

fn request(path: &str, host: &str, ctype: Option<&str>) -> RequestHeader {
    let mut req = RequestHeader::build("POST", path.as_bytes(), None).unwrap();
    req.insert_header("host", host).unwrap();
    if let Some(c) = ctype {
        req.insert_header("content-type", c).unwrap();
    }
    req.insert_header("user-agent", "not signed").unwrap();
    req
}

const SIGNED: [&str; 3] = ["x-amz-date", "authorization", "x-amz-security-token"];

/// The headers this module's signing and the crate's give `req`.
fn both(s: &Signer, req: &RequestHeader, body: &[u8], time: SystemTime) -> [[String; 3]; 2] {
    let mut out: [[String; 3]; 2] = Default::default();
    for (i, crate_) in [false, true].into_iter().enumerate() {
        let mut r = req.clone();
        if crate_ {
            s.sign_with_crate(&mut r, body, time).unwrap();
        } else {
            s.sign(&mut r, body, time).unwrap();
        }
        for (j, name) in SIGNED.iter().enumerate() {
            let v = r
                .headers
                .get(*name)
                .map(|v| (v.to_str().unwrap(), v.is_sensitive()));
            if let Some((_, sensitive)) = v {
                assert_eq!(sensitive, j > 0, "{name} sensitive");
            }
            out[i][j] = v.map_or_else(String::new, |(v, _)| v.to_string());
        }
    }
    out
}

#[test]
fn the_reference_example_signs_as_the_crate_does_and_as_botocore_did() {
    let s = Signer::new(creds(None), "us-east-1", "bedrock");
    let req = request(
        "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
        "bedrock-runtime.us-east-1.amazonaws.com",
        Some("application/json"),
    );
    let body = br#"{"messages":[{"role":"user","content":[{"text":"Hello"}]}],"inferenceConfig":{"maxTokens":256}}"#;
    let time = UNIX_EPOCH + Duration::from_secs(1_714_564_800);
    let [ours, theirs] = both(&s, &req, body, time);
    assert_eq!(ours, theirs);
    assert!(ours[1]
        .ends_with("Signature=553ec5d0a93f78870e92bf4b41e87b3eac6105181bbd1c14d3c72c0a130eeda1"));
}

#[test]
fn the_day_key_follows_the_day() {
    let s = Signer::new(creds(Some("TOKEN")), "eu-west-3", "bedrock");
    let req = request("/model/m/converse", "h", Some("application/json"));
    // The same day twice (the key held), the next day, then the first again.
    for secs in [1_714_564_800, 1_714_600_000, 1_714_651_200, 1_714_564_801] {
        let [ours, theirs] = both(&s, &req, b"{}", UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(ours, theirs, "at {secs}");
    }
}

#[test]
fn dates_are_written_as_amz_dates() {
    assert_eq!(&amz_date(0), b"19700101T000000Z");
    assert_eq!(&amz_date(1_714_564_800), b"20240501T120000Z");
    assert_eq!(&amz_date(951_868_799), b"20000229T235959Z");
}

#[test]
fn what_this_module_does_not_write_goes_through_the_crate() {
    let s = Signer::new(creds(None), "us-east-1", "bedrock");
    let time = UNIX_EPOCH + Duration::from_secs(1_714_564_800);
    for (path, host, ctype) in [
        ("/model/a/../b/converse", "h", Some("application/json")),
        ("/model//converse", "h", None),
        ("/model/m/converse/", "h", None),
        ("/model/./m", "h", None),
        ("/model/m?x=1&a=2", "h", None),
        ("/model/m", "h", Some("application/json;  charset=utf-8")),
    ] {
        let req = request(path, host, ctype);
        let [ours, theirs] = both(&s, &req, b"{}", time);
        assert_eq!(ours, theirs, "{path} {host:?} {ctype:?}");
    }
}

proptest! {
    /// Paths of every byte SigV4 encodes, with and without a content type and a session token,
    /// at any time: the same headers as the crate's.
    #[test]
    fn signs_as_the_crate_does(
        segments in prop::collection::vec("[a-zA-Z0-9%:.,@!$&'()*+;=~_-]{1,12}", 1..4),
        ctype in prop::option::of("[a-z/]{1,20}"),
        token in prop::option::of("[A-Za-z0-9+/=]{1,40}"),
        body in prop::collection::vec(any::<u8>(), 0..300),
        secs in 0u64..4_000_000_000,
    ) {
        let s = Signer::new(creds(token.as_deref()), "us-west-2", "bedrock");
        let path = format!("/{}", segments.join("/"));
        let req = request(&path, "bedrock-runtime.us-west-2.amazonaws.com", ctype.as_deref());
        let [ours, theirs] = both(&s, &req, &body, UNIX_EPOCH + Duration::from_secs(secs));
        prop_assert_eq!(ours, theirs);
    }
}
