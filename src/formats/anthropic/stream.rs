//! Anthropic stream: event decoder and encoder.
