//! Tollgate: an AI gateway on Pingora. See ARCHITECTURE.md for the map.

pub mod admin;
pub mod auth;
pub mod balance;
pub mod cache;
pub mod clock;
pub mod config;
pub mod error;
pub mod formats;
pub mod fronts;
pub mod gateway;
pub mod limits;
pub mod mock;
pub mod net;
pub mod observe;
pub mod providers;
pub mod queue;
pub mod reload;
pub mod route;
pub mod server;
pub mod store;
pub mod stream;
