"""The official SDKs against the cloud providers through Tollgate: AWS Bedrock (SigV4,
ConverseStream's binary event stream), Gemini on AI Studio, Gemini on Vertex AI and Claude on
Vertex AI (service-account OAuth), with the ``openai`` and ``anthropic`` SDKs, streaming and
not, tools, usage and errors checked; and OpenAI embeddings served by each cloud API."""

import base64
import json
import struct

import anthropic
import openai
import pytest

from test_translation import WEATHER_ANT, WEATHER_OAI

CLOUD = ["bedrock-claude", "gemini-2.0-flash", "vertex-gemini", "vertex-claude"]
EMBED = ["titan-embed", "cohere-embed", "gemini-embed", "vertex-embed"]


@pytest.fixture(scope="session")
def oai(gateway):
    base, key = gateway
    return openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=10)


@pytest.fixture(scope="session")
def ant(gateway):
    base, key = gateway
    return anthropic.Anthropic(base_url=base, api_key=key, max_retries=0, timeout=10)


@pytest.mark.parametrize("model", CLOUD)
def test_openai_plain_and_stream_agree(oai, model):
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
    r = oai.chat.completions.create(model=model, max_tokens=6, messages=msgs)
    assert r.object == "chat.completion" and r.model == model
    assert r.choices[0].finish_reason == "length"
    assert r.choices[0].message.content
    u = r.usage
    assert u.prompt_tokens > 0 and u.completion_tokens > 0
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens
    chunks = list(oai.chat.completions.create(
        model=model, max_tokens=6, messages=msgs, stream=True,
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == r.choices[0].message.content
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == u.completion_tokens
    assert chunks[-1].usage.prompt_tokens == u.prompt_tokens
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"


@pytest.mark.parametrize("model", CLOUD)
@pytest.mark.parametrize("streamed", [False, True])
def test_openai_tool_round_trip(oai, model, streamed):
    msgs = [{"role": "user", "content": "What is the weather in Paris?"}]
    if streamed:
        calls, finish = {}, None
        for c in oai.chat.completions.create(model=model, messages=msgs, tools=[WEATHER_OAI], stream=True):
            for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
                cur = calls.setdefault(tc.index, {"id": tc.id, "name": "", "args": ""})
                cur["name"] += tc.function.name or ""
                cur["args"] += tc.function.arguments or ""
            if c.choices and c.choices[0].finish_reason:
                finish = c.choices[0].finish_reason
        assert finish == "tool_calls"
        call = calls[0]
        tool_calls = [{"id": call["id"], "type": "function",
                       "function": {"name": call["name"], "arguments": call["args"]}}]
        assistant = {"role": "assistant", "content": None, "tool_calls": tool_calls}
        call_id, name, args = call["id"], call["name"], call["args"]
    else:
        r = oai.chat.completions.create(model=model, messages=msgs, tools=[WEATHER_OAI])
        assert r.choices[0].finish_reason == "tool_calls"
        tc = r.choices[0].message.tool_calls[0]
        assistant = r.choices[0].message.model_dump(exclude_none=True)
        call_id, name, args = tc.id, tc.function.name, tc.function.arguments
    assert name == "get_weather" and isinstance(json.loads(args)["city"], str)
    msgs += [assistant, {"role": "tool", "tool_call_id": call_id, "content": "18°C, cloudy"}]
    r2 = oai.chat.completions.create(model=model, messages=msgs, tools=[WEATHER_OAI])
    assert r2.choices[0].finish_reason == "stop" and r2.choices[0].message.content


@pytest.mark.parametrize("model", CLOUD)
@pytest.mark.parametrize("streamed", [False, True])
def test_anthropic_sdk_tools_and_usage(ant, model, streamed):
    msgs = [{"role": "user", "content": "Weather in Paris?"}]
    kw = dict(model=model, max_tokens=256, tools=[WEATHER_ANT], messages=msgs)
    if streamed:
        with ant.messages.stream(**kw) as s:
            m = s.get_final_message()
    else:
        m = ant.messages.create(**kw)
    # Same API on both sides (Claude on Vertex) passes the provider's model name through.
    assert m.model in (model, "claude-sonnet-4-5@20250929") and m.stop_reason == "tool_use"
    assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0
    use = next(b for b in m.content if b.type == "tool_use")
    assert use.name == "get_weather" and isinstance(use.input["city"], str)
    msgs += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in m.content]},
             {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "18°C"}]}]
    m2 = ant.messages.create(model=model, max_tokens=64, tools=[WEATHER_ANT], messages=msgs)
    assert m2.stop_reason == "end_turn" and m2.content[0].text


@pytest.mark.parametrize("model", CLOUD)
def test_anthropic_sdk_stream_text(ant, model):
    with ant.messages.stream(model=model, max_tokens=5, messages=[{"role": "user", "content": "Hi"}]) as s:
        text = "".join(s.text_stream)
        m = s.get_final_message()
    plain = ant.messages.create(model=model, max_tokens=5, messages=[{"role": "user", "content": "Hi"}])
    assert text == plain.content[0].text and m.stop_reason == "max_tokens"
    assert m.usage.output_tokens == plain.usage.output_tokens


@pytest.mark.parametrize("model", CLOUD)
def test_errors_in_each_sdk(oai, ant, model):
    with pytest.raises(openai.RateLimitError):
        oai.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}],
                                    extra_headers={"x-mock-status": "429"})
    with pytest.raises(anthropic.RateLimitError):
        ant.messages.create(model=model, max_tokens=5, messages=[{"role": "user", "content": "x"}],
                            extra_headers={"x-mock-status": "429"})
    with pytest.raises(openai.APIError):
        for _ in oai.chat.completions.create(model=model, stream=True, messages=[{"role": "user", "content": "x"}],
                                             extra_headers={"x-mock-stream-error-after": "2"}):
            pass


@pytest.mark.parametrize("model", EMBED)
def test_embeddings(oai, model):
    r = oai.embeddings.create(model=model, input="The food was delicious", encoding_format="float")
    assert r.model == model and len(r.data) == 1 and len(r.data[0].embedding) > 0
    assert r.usage.prompt_tokens > 0
    # The SDK's default asks for base64 and decodes it: the same vector.
    d = oai.embeddings.create(model=model, input="The food was delicious")
    assert d.data[0].embedding == pytest.approx(r.data[0].embedding)
    if model != "titan-embed":
        many = oai.embeddings.create(model=model, input=["a", "b", "c"], encoding_format="float")
        assert [e.index for e in many.data] == [0, 1, 2]


def test_titan_takes_one_input(oai):
    with pytest.raises(openai.BadRequestError) as e:
        oai.embeddings.create(model="titan-embed", input=["a", "b"])
    assert e.value.param == "input"


def test_base64_is_little_endian_f32(gateway, oai):
    import urllib.request
    base, key = gateway
    req = urllib.request.Request(
        base + "/v1/embeddings", method="POST",
        data=json.dumps({"model": "gemini-embed", "input": "x", "encoding_format": "base64"}).encode(),
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = json.load(resp)
    raw = base64.b64decode(body["data"][0]["embedding"])
    floats = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    plain = oai.embeddings.create(model="gemini-embed", input="x", encoding_format="float")
    assert floats == pytest.approx(plain.data[0].embedding)


def test_anthropic_cache_control_becomes_bedrock_cache_points(ant):
    """Claude Code's cache marks reach Bedrock as Converse cache points, and the cache usage
    Bedrock reports comes back in Anthropic's fields."""
    kw = dict(model="bedrock-claude", max_tokens=16,
              system=[{"type": "text", "text": "A long shared context.",
                       "cache_control": {"type": "ephemeral"}}],
              messages=[{"role": "user", "content": "Hello"}])
    for m in [ant.messages.create(**kw), ant.messages.stream(**kw).__enter__().get_final_message()]:
        u = m.usage
        assert u.cache_read_input_tokens > 0 and u.cache_creation_input_tokens > 0
    plain = ant.messages.create(model="bedrock-claude", max_tokens=16, system="A long shared context.",
                                messages=[{"role": "user", "content": "Hello"}])
    assert plain.usage.cache_read_input_tokens in (0, None)
