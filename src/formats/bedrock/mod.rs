//! AWS Bedrock's Converse API (and its event-stream replies).
