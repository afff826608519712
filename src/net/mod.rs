//! The gateway's own outbound calls, below every other layer: upstream URLs (`url`) and one
//! small HTTP POST (`post`: OAuth token exchanges, webhook notices).

pub mod post;
pub mod url;
