//! Google service-account credentials: OAuth access tokens for Vertex AI.
