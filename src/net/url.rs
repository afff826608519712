//! Upstream URLs: scheme, host, port and base path, as a backend's `url`, a token endpoint or a
//! webhook is written. A leaf: config validates with it, the outbound POST and providers use it.

#[derive(Debug, Clone)]
pub struct UpstreamUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path prefix prepended to the client's path, without a trailing slash ("" for none).
    pub base_path: String,
}

pub fn parse_url(s: &str) -> Result<UpstreamUrl, String> {
    let uri: http::Uri = s.parse().map_err(|_| format!("`{s}` is not a valid URL"))?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(format!("`{s}`: the scheme must be http or https")),
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("`{s}` has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    if uri.query().is_some() {
        return Err(format!("`{s}`: a query string is not allowed"));
    }
    // From the authority's text: `http` reads a port it cannot parse as none at all.
    let port = match port_text(uri.authority().map_or("", |a| a.as_str())) {
        None => {
            if tls {
                443
            } else {
                80
            }
        }
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("`{s}`: the port must be 1 to 65535")),
        },
    };
    let base_path = uri.path().trim_end_matches('/').to_string();
    Ok(UpstreamUrl {
        tls,
        host,
        port,
        base_path,
    })
}

/// The port written in an authority (`user@host:port`, `[::1]:port`), if any.
fn port_text(authority: &str) -> Option<&str> {
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let after_host = host_port.rfind(']').map_or(host_port, |i| &host_port[i..]);
    after_host.rsplit_once(':').map(|(_, p)| p)
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    #[test]
    fn ports_are_checked_and_defaulted() {
        assert_eq!(parse_url("https://api.openai.com").unwrap().port, 443);
        assert_eq!(parse_url("http://127.0.0.1").unwrap().port, 80);
        assert_eq!(
            parse_url("http://127.0.0.1:9000/v1/").unwrap().base_path,
            "/v1"
        );
        for bad in [
            "http://127.0.0.1:99999",
            "http://127.0.0.1:0",
            "http://h:-1",
        ] {
            let e = parse_url(bad).map(|u| u.port).unwrap_err();
            assert!(
                e.contains("port") || e.contains("not a valid URL"),
                "{bad}: {e}"
            );
        }
        assert!(parse_url("ftp://h").is_err() && parse_url("http://h/?q=1").is_err());
    }
}
