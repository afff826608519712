//! Google's Gemini API (AI Studio and Vertex AI share it).
