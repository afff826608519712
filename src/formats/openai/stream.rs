//! OpenAI stream: chunk decoder and encoder.
