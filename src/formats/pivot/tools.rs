//! A chat request's `tools` and `tool_choice`, read once into typed values that each target
//! maps to its own wire shape.

use crate::error::ApiError;
use crate::formats::fields::{unsupported, Fields};
use crate::formats::openai::types::{Extra, FunctionDef, Tool};
use serde_json::{json, Value};

/// One function tool of a chat request. `strict` and the like are not carried: no target has
/// them, and they are accepted and ignored.
pub(crate) struct ChatTool<'a> {
    /// `tools[i]`: where errors and dropped fields point.
    pub path: String,
    pub name: &'a str,
    pub description: Option<&'a str>,
    /// The JSON schema; `None` when absent.
    pub parameters: Option<&'a Value>,
    /// The tool object's fields beyond `type` and `function`: the caller applies the field
    /// policy to them (Bedrock reads `cache_control` among them).
    pub extra: &'a Extra,
}

/// The function tools of a chat request, in order (see [`function_tools`]). A named type, not
/// `impl Iterator`: it borrows the request and the field policy for different lifetimes.
pub(crate) struct FunctionTools<'a, 'b> {
    tools: std::iter::Enumerate<std::slice::Iter<'a, Tool>>,
    who: &'b str,
    f: &'b Fields,
}

/// The function tools of `tools`. A tool of another type is refused by name ("must be a
/// function tool {who}") or, under `drop_params`, skipped; the function's unknown fields go by
/// the field policy (`tools[i].function.x`). The tool object's own are the caller's (`extra`).
pub(crate) fn function_tools<'a, 'b>(
    tools: &'a [Tool],
    who: &'b str,
    f: &'b Fields,
) -> FunctionTools<'a, 'b> {
    FunctionTools {
        tools: tools.iter().enumerate(),
        who,
        f,
    }
}

impl<'a> Iterator for FunctionTools<'a, '_> {
    type Item = Result<ChatTool<'a>, ApiError>;

    fn next(&mut self) -> Option<Self::Item> {
        for (i, t) in self.tools.by_ref() {
            let path = format!("tools[{i}]");
            match function_of(t, &path, self.who, self.f) {
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
                Ok(Some(func)) => {
                    return Some(Ok(ChatTool {
                        name: &func.name,
                        description: func.description.as_deref(),
                        parameters: func.parameters.as_ref().filter(|v| !v.is_null()),
                        extra: &t.extra,
                        path,
                    }))
                }
            }
        }
        None
    }
}

/// A tool's function, when it is one: other tool types (OpenAI's `custom`, hosted tools) are
/// beyond the target, so they are refused by name (or dropped under `drop_params`: `None`).
fn function_of<'a>(
    t: &'a Tool,
    p: &str,
    who: &str,
    f: &Fields,
) -> Result<Option<&'a FunctionDef>, ApiError> {
    match (&*t.kind, &t.function) {
        ("function", Some(func)) => {
            f.unknown(&func.extra, &format!("{p}.function"))?;
            Ok(Some(func))
        }
        _ => f
            .unsupported(
                format!("{p}.type"),
                &format!("must be a function tool {who}"),
            )
            .map(|()| None),
    }
}

/// The schema of a tool without `parameters`: an object with no properties.
pub(crate) fn empty_object_schema() -> Value {
    json!({"type": "object", "properties": {}})
}

/// A chat `tool_choice`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChatToolChoice<'a> {
    /// `"auto"`.
    Auto,
    /// `"required"`: some tool must be called.
    Required,
    /// `"none"`: no tool may be called (not `None`, so `Option<ChatToolChoice>` reads plainly).
    Off,
    /// `{"type": "function", "function": {"name"}}`.
    Function(&'a str),
}

impl<'a> ChatToolChoice<'a> {
    /// Reads a chat `tool_choice`; `None` when absent or null. `who` ends the refusal of a
    /// shape the targets cannot express ("for this model's provider (Gemini).").
    pub(crate) fn read(
        tc: Option<&'a Value>,
        who: &str,
    ) -> Result<Option<ChatToolChoice<'a>>, ApiError> {
        Ok(Some(match tc {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(s)) => match s.as_str() {
                "auto" => ChatToolChoice::Auto,
                "required" => ChatToolChoice::Required,
                "none" => ChatToolChoice::Off,
                _ => return Err(unsupported("tool_choice".into(), "has an unknown value.")),
            },
            Some(v) => match (v["type"].as_str(), v["function"]["name"].as_str()) {
                (Some("function"), Some(name)) => ChatToolChoice::Function(name),
                _ => {
                    return Err(unsupported(
                        "tool_choice".into(),
                        &format!("must be auto, required, none or a named function {who}"),
                    ))
                }
            },
        }))
    }

    /// In chat's own shape, for the translators that write the pivot (Anthropic and
    /// Responses clients).
    pub(crate) fn to_chat(self) -> Value {
        match self {
            ChatToolChoice::Auto => json!("auto"),
            ChatToolChoice::Required => json!("required"),
            ChatToolChoice::Off => json!("none"),
            ChatToolChoice::Function(name) => {
                json!({"type": "function", "function": {"name": name}})
            }
        }
    }
}
