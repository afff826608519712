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
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let base_path = uri.path().trim_end_matches('/').to_string();
    Ok(UpstreamUrl {
        tls,
        host,
        port,
        base_path,
    })
}
