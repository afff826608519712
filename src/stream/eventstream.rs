//! AWS event-stream framing (`application/vnd.amazon.eventstream`).
