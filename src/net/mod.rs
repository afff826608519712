//! The network below every other layer: upstream URLs (`url`), the gateway's one small HTTP
//! POST (`post`: OAuth token exchanges, webhook notices), and TLS for its own listeners (`tls`).

pub mod post;
pub mod tls;
pub mod url;
