// Vercel AI SDK tool round trip: streamText with one tool and `stopWhen: stepCountIs(3)`.
//   node aisdk.mjs openai|anthropic|responses MODEL BASE_URL KEY TOKEN
// openai: the OpenAI provider's chat model; anthropic: the Anthropic provider; responses: the
// OpenAI provider's Responses model with its default `store` (the second step refers to the
// first step's items by `item_reference`). The tool returns TOKEN; exits 0 when the model
// called it and then answered in text. (Run from .clients/npm, where the packages are.)
import { streamText, tool, jsonSchema, stepCountIs } from "ai";
import { createOpenAI } from "@ai-sdk/openai";
import { createAnthropic } from "@ai-sdk/anthropic";

const [kind, modelName, base, key, token] = process.argv.slice(2);
let model;
if (kind === "anthropic") {
  model = createAnthropic({ baseURL: `${base}/v1`, apiKey: key })(modelName);
} else {
  const openai = createOpenAI({ baseURL: `${base}/v1`, apiKey: key });
  model = kind === "responses" ? openai.responses(modelName) : openai.chat(modelName);
}

let called = 0;
const result = streamText({
  model,
  prompt: "Look up the note for the harness, then tell me what it says.",
  maxRetries: 0,
  tools: {
    get_note: tool({
      description: "Returns the note for a topic.",
      inputSchema: jsonSchema({
        type: "object",
        properties: {
          topic: { type: "string", description: "What the note is about" },
          urgency: { type: "string", enum: ["low", "high"] },
        },
        required: ["topic", "urgency"],
        additionalProperties: false,
      }),
      execute: async () => {
        called += 1;
        return token;
      },
    }),
  },
  stopWhen: stepCountIs(3),
  onError: ({ error }) => {
    console.error("stream error:", error?.message ?? error, error?.responseBody ?? "");
  },
});

try {
  const text = await result.text;
  const steps = await result.steps;
  console.log(`steps=${steps.length} tool_calls=${called} text=${JSON.stringify(text)}`);
  if (called < 1 || steps.length < 2 || !text) {
    console.error("no tool round trip");
    process.exit(1);
  }
} catch (e) {
  console.error("error:", e?.message ?? e, e?.responseBody ?? "");
  process.exit(1);
}
