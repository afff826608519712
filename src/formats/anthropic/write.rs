//! The Messages request written by hand, as its derive writes it (the same fields in the same
//! order: the tests compare the two). Through the derive each long text was escaped into a
//! copy that serde_json then checked again before copying it into the body, and each key was
//! escaped at run time: about 9k instructions for a 1 KiB prompt.

use super::types::{OutBlock, OutRequest, OutSource, OutTurn};
use crate::formats::write as w;
use serde_json::Value;

impl OutRequest<'_> {
    /// The request body.
    pub fn write(&self) -> Vec<u8> {
        let texts: usize = (self.system.iter())
            .chain(self.messages.iter().flat_map(|t| t.content.iter()))
            .map(OutBlock::size_hint)
            .sum();
        let mut o = String::with_capacity(128 + texts);
        o.push_str("{\"model\":");
        w::string(&mut o, self.model);
        o.push_str(",\"max_tokens\":");
        w::uint(&mut o, self.max_tokens);
        if !self.system.is_empty() {
            o.push_str(",\"system\":");
            blocks(&mut o, &self.system);
        }
        o.push_str(",\"messages\":[");
        for (i, turn) in self.messages.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            write_turn(&mut o, turn);
        }
        o.push(']');
        self.write_options(&mut o);
        o.push('}');
        o.into_bytes()
    }

    /// Everything after the messages, each only when set.
    fn write_options(&self, o: &mut String) {
        if let Some(t) = self.temperature {
            o.push_str(",\"temperature\":");
            w::float(o, t);
        }
        if let Some(p) = self.top_p {
            o.push_str(",\"top_p\":");
            w::float(o, p);
        }
        if let Some(k) = self.top_k {
            o.push_str(",\"top_k\":");
            w::uint(o, k);
        }
        if let Some(stops) = &self.stop_sequences {
            o.push_str(",\"stop_sequences\":[");
            for (i, s) in stops.iter().enumerate() {
                if i > 0 {
                    o.push(',');
                }
                w::string(o, s);
            }
            o.push(']');
        }
        opt_value(o, ",\"metadata\":", &self.metadata);
        opt_value(o, ",\"tools\":", &self.tools);
        opt_value(o, ",\"tool_choice\":", &self.tool_choice);
        opt_value(o, ",\"output_config\":", &self.output_config);
        opt_value(o, ",\"thinking\":", &self.thinking);
        if let Some(s) = self.stream {
            o.push_str(if s {
                ",\"stream\":true"
            } else {
                ",\"stream\":false"
            });
        }
    }
}

impl OutBlock<'_> {
    /// About the bytes it writes, for the body's first allocation.
    fn size_hint(&self) -> usize {
        match self {
            OutBlock::Text { text } => text.len() + 24,
            OutBlock::ToolResult { content, .. } => content.len() + 64,
            OutBlock::Image { source } | OutBlock::Document { source } => match source {
                OutSource::Base64 { data, .. } => data.len() + 80,
                OutSource::Url { url } => url.len() + 48,
            },
            OutBlock::ToolUse { .. } => 128,
        }
    }
}

fn opt_value(o: &mut String, key: &str, v: &Option<Value>) {
    if let Some(v) = v {
        o.push_str(key);
        w::value(o, v);
    }
}

fn write_turn(o: &mut String, turn: &OutTurn<'_>) {
    o.push_str("{\"role\":");
    w::string(o, turn.role);
    o.push_str(",\"content\":");
    blocks(o, &turn.content);
    o.push('}');
}

fn blocks(o: &mut String, blocks: &[OutBlock<'_>]) {
    o.push('[');
    for (i, b) in blocks.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        block(o, b);
    }
    o.push(']');
}

fn block(o: &mut String, b: &OutBlock<'_>) {
    match b {
        OutBlock::Text { text } => {
            o.push_str("{\"type\":\"text\",\"text\":");
            w::string(o, text);
        }
        OutBlock::Image { source } => {
            o.push_str("{\"type\":\"image\",\"source\":");
            write_source(o, source);
        }
        OutBlock::Document { source } => {
            o.push_str("{\"type\":\"document\",\"source\":");
            write_source(o, source);
        }
        OutBlock::ToolUse { id, name, input } => {
            o.push_str("{\"type\":\"tool_use\",\"id\":");
            w::string(o, id);
            o.push_str(",\"name\":");
            w::string(o, name);
            o.push_str(",\"input\":");
            w::value(o, input);
        }
        OutBlock::ToolResult {
            tool_use_id,
            content,
        } => {
            o.push_str("{\"type\":\"tool_result\",\"tool_use_id\":");
            w::string(o, tool_use_id);
            o.push_str(",\"content\":");
            w::string(o, content);
        }
    }
    o.push('}');
}

fn write_source(o: &mut String, s: &OutSource<'_>) {
    match s {
        OutSource::Base64 { media_type, data } => {
            o.push_str("{\"type\":\"base64\",\"media_type\":");
            w::string(o, media_type);
            o.push_str(",\"data\":");
            w::string(o, data);
        }
        OutSource::Url { url } => {
            o.push_str("{\"type\":\"url\",\"url\":");
            w::string(o, url);
        }
    }
    o.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::borrow::Cow;

    /// Every field and every kind of block, long and short texts that need escaping: the
    /// hand-written body is the derive's, byte for byte.
    #[test]
    fn a_request_is_written_as_its_derive_writes_it() {
        let long = "a \"quoted\" line\n\tand é 漢 🦀 \u{1}".repeat(8);
        let text = |s: &str| OutBlock::Text {
            text: Cow::Owned(s.to_string()),
        };
        let full = OutRequest {
            model: "claude-x",
            max_tokens: 1024,
            system: vec![text(&long), text("terse")],
            messages: vec![
                OutTurn {
                    role: "user",
                    content: vec![
                        text(&long),
                        OutBlock::Image {
                            source: OutSource::Base64 {
                                media_type: "image/png",
                                data: "iVBORw0KGgo=",
                            },
                        },
                        OutBlock::Document {
                            source: OutSource::Url {
                                url: "https://example.com/a.pdf",
                            },
                        },
                    ],
                },
                OutTurn {
                    role: "assistant",
                    content: vec![OutBlock::ToolUse {
                        id: "toolu_1",
                        name: "get_weather",
                        input: json!({"city": long, "days": 3, "t": -1.5, "ok": [true, null]}),
                    }],
                },
                OutTurn {
                    role: "user",
                    content: vec![OutBlock::ToolResult {
                        tool_use_id: "toolu_1",
                        content: Cow::Borrowed("sunny \"warm\""),
                    }],
                },
            ],
            temperature: Some(0.2),
            top_p: Some(1.0),
            top_k: Some(40),
            stop_sequences: Some(vec!["\n\nHuman:", "END"]),
            metadata: Some(json!({"user_id": "u-1"})),
            tools: Some(json!([{"name": "get_weather", "description": long,
                "input_schema": {"type": "object", "properties": {}}}])),
            tool_choice: Some(json!({"type": "auto", "disable_parallel_tool_use": true})),
            output_config: Some(json!({"format": {"type": "json_schema", "schema": {}}})),
            thinking: Some(json!({"type": "enabled", "budget_tokens": 2048})),
            stream: Some(true),
        };
        let least = OutRequest {
            model: "m",
            messages: vec![OutTurn {
                role: "user",
                content: vec![text("")],
            }],
            stream: Some(false),
            ..OutRequest::default()
        };
        for req in [full, least] {
            let hand = String::from_utf8(req.write()).unwrap();
            assert_eq!(hand, serde_json::to_string(&req).unwrap());
        }
    }
}
