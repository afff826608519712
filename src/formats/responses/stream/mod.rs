//! Responses event streams: read from an upstream that speaks them (`decode`: events → pivot
//! deltas, for accounting and for translated clients), and written for a Responses client whose
//! backend speaks another API (`encode`: deltas → events).

mod decode;
mod encode;

pub use decode::EventDecoder;
pub use encode::EventEncoder;
