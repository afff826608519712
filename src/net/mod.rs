//! The network below every other layer: upstream URLs (`url`), the gateway's small outbound
//! requests (`post`: OAuth token exchanges, webhook notices, JWKS fetches), TLS for its own
//! listeners (`tls`), a request sent upstream in one write (`send`), and client addresses
//! (`address`: CIDR rules, the client behind trusted proxies).

pub mod address;
pub mod post;
pub mod send;
pub mod tls;
pub mod url;
