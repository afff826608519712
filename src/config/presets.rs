//! OpenAI-compatible providers by name: each is only a default URL on the `openai` format.
//! `url` in the config overrides it (a self-hosted server elsewhere, a test mock).

/// Name and default base URL. Bases end in their API version, so `/v1/chat/completions`
/// lands on `{base}/chat/completions`.
pub const PRESETS: &[(&str, &str)] = &[
    ("mistral", "https://api.mistral.ai/v1"),
    ("groq", "https://api.groq.com/openai/v1"),
    ("deepseek", "https://api.deepseek.com/v1"),
    ("xai", "https://api.x.ai/v1"),
    ("together", "https://api.together.xyz/v1"),
    ("fireworks", "https://api.fireworks.ai/inference/v1"),
    ("openrouter", "https://openrouter.ai/api/v1"),
    ("cerebras", "https://api.cerebras.ai/v1"),
    ("ollama", "http://127.0.0.1:11434/v1"),
    ("vllm", "http://127.0.0.1:8000/v1"),
    ("lmstudio", "http://127.0.0.1:1234/v1"),
];

/// The preset's name (static) and default URL.
pub fn find(name: &str) -> Option<(&'static str, &'static str)> {
    PRESETS.iter().copied().find(|(n, _)| *n == name)
}

/// Default URL of the first-party providers.
pub const OPENAI_URL: &str = "https://api.openai.com";
pub const ANTHROPIC_URL: &str = "https://api.anthropic.com";
pub const GEMINI_URL: &str = "https://generativelanguage.googleapis.com";
/// Claude on Vertex AI's `anthropic_version` (sent in the body).
pub const VERTEX_ANTHROPIC_VERSION: &str = "vertex-2023-10-16";
/// Azure's newest GA inference api-version at the time of writing.
pub const AZURE_API_VERSION: &str = "2024-10-21";
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
pub const ANTHROPIC_DEFAULT_MAX_TOKENS: u32 = 4096;

/// Every accepted `provider` value, for error messages.
pub fn names() -> String {
    let mut v = vec![
        "openai",
        "azure",
        "anthropic",
        "bedrock",
        "gemini",
        "vertex",
        "vertex-anthropic",
    ];
    v.extend(PRESETS.iter().map(|(n, _)| *n));
    v.join(", ")
}
