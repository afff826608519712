//! The network below every other layer: upstream URLs (`url`), the gateway's small outbound
//! requests (`post`: OAuth token exchanges, webhook notices, JWKS fetches), TLS for its own
//! listeners (`tls`), the upstream socket's cork while a request is written (`cork`), and client addresses (`address`: CIDR rules, the client behind trusted
//! proxies).

pub mod address;
pub mod cork;

pub mod post;
pub mod tls;
pub mod url;
