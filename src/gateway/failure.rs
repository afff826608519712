//! How an upstream attempt failed, by Pingora's error type: what the retry policy, the metrics
//! and the relay's mid-response labels go by.

use crate::error::ApiError;
use pingora::{Error, ErrorType};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
    Connect,
    Timeout,
    Protocol,
    /// No access token for the backend (its OAuth refresh failed).
    Credentials,
}

impl Failure {
    pub(super) fn of(e: &Error) -> Failure {
        match e.etype() {
            ErrorType::ConnectTimedout
            | ErrorType::ReadTimedout
            | ErrorType::WriteTimedout
            | ErrorType::TLSHandshakeTimedout => Failure::Timeout,
            ErrorType::ConnectRefused
            | ErrorType::ConnectNoRoute
            | ErrorType::ConnectError
            | ErrorType::ConnectProxyFailure
            | ErrorType::TLSHandshakeFailure
            | ErrorType::SocketError
            | ErrorType::BindError => Failure::Connect,
            _ => Failure::Protocol,
        }
    }

    pub(super) fn label(self) -> &'static str {
        match self {
            Failure::Connect => "connect_error",
            Failure::Timeout => "timeout",
            Failure::Protocol => "protocol_error",
            Failure::Credentials => "credentials_error",
        }
    }
}

/// How a request that did not complete normally ends.
pub(super) enum Handled {
    /// Answer with this error (nothing has been written yet).
    Respond(ApiError),
    /// Close the connection: a response was already started.
    Abort(Box<Error>),
}

impl From<ApiError> for Handled {
    fn from(e: ApiError) -> Self {
        Handled::Respond(e)
    }
}
