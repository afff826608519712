//! The Converse request written by hand: its texts escaped straight from the chat request into
//! the body, the rest (tool configuration, model fields, the rarer blocks) written from their
//! JSON values. Field order is free: Converse reads JSON objects, and the tests compare values.

use super::messages::{Block, Turn};
use crate::formats::write as w;
use serde_json::{Map, Value};

/// What a Converse request holds, each part already built.
pub(super) struct Converse<'a> {
    pub messages: Vec<Turn<'a>>,
    pub system: Vec<Block<'a>>,
    pub inference: Inference<'a>,
    pub tool_config: Option<Value>,
    pub output_config: Option<Value>,
    pub model_fields: Map<String, Value>,
}

/// `inferenceConfig`: each field only when set.
pub(super) struct Inference<'a> {
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub stop: Vec<&'a str>,
}

impl Converse<'_> {
    /// The request body, in a buffer sized first from its texts (see `write::object_text`).
    pub fn write(&self) -> Vec<u8> {
        let blocks =
            (self.system.iter()).chain(self.messages.iter().flat_map(|t| t.content.iter()));
        let texts: usize = blocks.map(size).sum();
        let mut o = String::with_capacity((192 + texts).next_power_of_two());
        o.push_str("{\"messages\":[");
        for (i, turn) in self.messages.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            o.push_str("{\"role\":\"");
            o.push_str(turn.role);
            o.push_str("\",\"content\":");
            write_blocks(&mut o, &turn.content);
            o.push('}');
        }
        o.push(']');
        if !self.system.is_empty() {
            o.push_str(",\"system\":");
            write_blocks(&mut o, &self.system);
        }
        o.push_str(",\"inferenceConfig\":");
        self.inference.write(&mut o);
        for (key, v) in [
            ("toolConfig", &self.tool_config),
            ("outputConfig", &self.output_config),
        ] {
            if let Some(v) = v {
                o.push_str(",\"");
                o.push_str(key);
                o.push_str("\":");
                w::value(&mut o, v);
            }
        }
        if !self.model_fields.is_empty() {
            o.push_str(",\"additionalModelRequestFields\":");
            w::object(&mut o, &self.model_fields);
        }
        o.push('}');
        o.into_bytes()
    }
}

impl Inference<'_> {
    fn write(&self, o: &mut String) {
        let mut sep = '{';
        let mut key = |o: &mut String, k: &str| {
            o.push(sep);
            sep = ',';
            o.push('"');
            o.push_str(k);
            o.push_str("\":");
        };
        if let Some(m) = self.max_tokens {
            key(o, "maxTokens");
            w::uint(o, m);
        }
        if let Some(t) = self.temperature {
            key(o, "temperature");
            w::float(o, t);
        }
        if let Some(p) = self.top_p {
            key(o, "topP");
            w::float(o, p);
        }
        if !self.stop.is_empty() {
            key(o, "stopSequences");
            for (i, s) in self.stop.iter().enumerate() {
                o.push(if i == 0 { '[' } else { ',' });
                w::string(o, s);
            }
            o.push(']');
        }
        if sep == '{' {
            o.push('{');
        }
        o.push('}');
    }
}

fn write_blocks(o: &mut String, blocks: &[Block]) {
    o.push('[');
    for (i, b) in blocks.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        match b {
            Block::Text(t) => {
                o.push_str("{\"text\":");
                w::string(o, t);
            }
            Block::CachePoint => o.push_str("{\"cachePoint\":{\"type\":\"default\"}"),
            Block::Other(kind, v) => {
                o.push_str("{\"");
                o.push_str(kind);
                o.push_str("\":");
                w::value(o, v);
            }
        }
        o.push('}');
    }
    o.push(']');
}

/// About the bytes a block writes (its text before escaping).
fn size(b: &Block) -> usize {
    match b {
        Block::Text(t) => t.len() + 12,
        Block::CachePoint => 36,
        Block::Other(kind, v) => kind.len() + 6 + w::size(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_part_is_written_as_json_converse_reads() {
        let prompt = "a \"quoted\"\nprompt ".repeat(100);
        let c = Converse {
            messages: vec![
                Turn {
                    role: "user",
                    content: vec![Block::Text(&prompt), Block::CachePoint],
                },
                Turn {
                    role: "assistant",
                    content: vec![Block::Other(
                        "toolUse",
                        json!({"toolUseId": "t", "input": {}}),
                    )],
                },
            ],
            system: vec![Block::Text("Be brief.")],
            inference: Inference {
                max_tokens: Some(9),
                temperature: Some(0.5),
                top_p: None,
                stop: vec!["END", "\u{e9}"],
            },
            tool_config: Some(json!({"tools": []})),
            output_config: None,
            model_fields: json!({"top_k": 3}).as_object().cloned().unwrap_or_default(),
        };
        let body = c.write();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            json!({
                "messages": [
                    {"role": "user", "content": [{"text": prompt}, {"cachePoint": {"type": "default"}}]},
                    {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t", "input": {}}}]}],
                "system": [{"text": "Be brief."}],
                "inferenceConfig": {"maxTokens": 9, "temperature": 0.5, "stopSequences": ["END", "\u{e9}"]},
                "toolConfig": {"tools": []},
                "additionalModelRequestFields": {"top_k": 3}})
        );
        // Sized from its texts: the buffer never grew past its first power of two.
        assert!(body.capacity() < 2 * body.len().next_power_of_two());
        let mut o = String::new();
        let none = Inference {
            max_tokens: None,
            temperature: None,
            top_p: None,
            stop: Vec::new(),
        };
        none.write(&mut o);
        assert_eq!(o, "{}");
    }
}
