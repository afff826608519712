"""The official SDKs across APIs: the ``openai`` SDK against an Anthropic backend and the
``anthropic`` SDK against an OpenAI-style backend and an Anthropic backend, streaming and
not, with tools, images and usage checked, and errors in each SDK's own types."""

import json

import anthropic
import openai
import pytest

PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
WEATHER_OAI = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
WEATHER_ANT = {"name": "get_weather", "description": "Current weather",
               "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
CLAUDE, GPT = "claude-sonnet-4-5", "gpt-4o-mini"


@pytest.fixture(scope="session")
def oai(gateway):
    base, key = gateway
    return openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=10)


@pytest.fixture(scope="session")
def ant(gateway):
    base, key = gateway
    return anthropic.Anthropic(base_url=base, api_key=key, max_retries=0, timeout=10)


# --- openai SDK → Anthropic backend -------------------------------------------------------

def test_openai_to_anthropic_plain(oai):
    r = oai.chat.completions.create(model=CLAUDE, max_tokens=6, messages=[
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}])
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-")
    assert r.model == CLAUDE
    assert r.choices[0].finish_reason == "length"
    assert len(r.choices[0].message.content.split()) == 6
    assert r.usage.completion_tokens == 6
    assert r.usage.total_tokens == r.usage.prompt_tokens + 6


def test_openai_to_anthropic_stream_with_usage(oai):
    chunks = list(oai.chat.completions.create(
        model=CLAUDE, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Hello"}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    plain = oai.chat.completions.create(model=CLAUDE, messages=[{"role": "user", "content": "Hello"}])
    assert text == plain.choices[0].message.content
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == plain.usage.completion_tokens
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_openai_to_anthropic_tools_and_image(oai):
    msgs = [{"role": "user", "content": [
        {"type": "text", "text": "What is the weather where this picture was taken?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + PNG}}]}]
    r = oai.chat.completions.create(model=CLAUDE, messages=msgs, tools=[WEATHER_OAI])
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments)["city"], str)
    # The tool result goes back; the model answers with text.
    msgs += [r.choices[0].message.model_dump(exclude_none=True),
             {"role": "tool", "tool_call_id": call.id, "content": "18°C, cloudy"}]
    r2 = oai.chat.completions.create(model=CLAUDE, messages=msgs, tools=[WEATHER_OAI])
    assert r2.choices[0].finish_reason == "stop" and r2.choices[0].message.content


def test_openai_to_anthropic_streamed_tool_call(oai):
    stream = oai.chat.completions.create(model=CLAUDE, stream=True, tools=[WEATHER_OAI],
                                         messages=[{"role": "user", "content": "Weather?"}])
    args, name = "", None
    for c in stream:
        for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            name = tc.function.name or name
            args += tc.function.arguments or ""
    assert name == "get_weather" and "city" in json.loads(args)


def test_openai_errors_from_anthropic(oai):
    with pytest.raises(openai.InternalServerError) as e:
        oai.chat.completions.create(model=CLAUDE, messages=[{"role": "user", "content": "x"}],
                                    extra_headers={"x-mock-status": "529"})
    assert e.value.status_code == 503
    with pytest.raises(openai.RateLimitError):
        oai.chat.completions.create(model=CLAUDE, messages=[{"role": "user", "content": "x"}],
                                    extra_headers={"x-mock-status": "429"})
    with pytest.raises(openai.BadRequestError) as e:
        oai.chat.completions.create(model=CLAUDE, n=2, messages=[{"role": "user", "content": "x"}])
    assert e.value.param == "n"


def test_openai_stream_error_event(oai):
    stream = oai.chat.completions.create(model=CLAUDE, stream=True, messages=[{"role": "user", "content": "x"}],
                                         extra_headers={"x-mock-stream-error-after": "3"})
    with pytest.raises(openai.APIError) as e:
        for _ in stream:
            pass
    assert "Overloaded" in str(e.value)


# --- anthropic SDK → OpenAI-style and Anthropic backends ----------------------------------

@pytest.mark.parametrize("model", [GPT, CLAUDE])
def test_anthropic_plain(ant, model):
    m = ant.messages.create(model=model, max_tokens=5, system="Be brief.",
                            messages=[{"role": "user", "content": "Hello"}])
    assert m.type == "message" and m.id.startswith("msg_") and m.role == "assistant"
    assert m.stop_reason == "max_tokens"
    assert len(m.content[0].text.split()) == 5
    assert m.usage.output_tokens == 5 and m.usage.input_tokens > 0


@pytest.mark.parametrize("model", [GPT, CLAUDE])
def test_anthropic_stream(ant, model):
    with ant.messages.stream(model=model, max_tokens=64,
                             messages=[{"role": "user", "content": "Hello"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    plain = ant.messages.create(model=model, max_tokens=64, messages=[{"role": "user", "content": "Hello"}])
    assert text == plain.content[0].text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == plain.usage.output_tokens
    assert final.usage.input_tokens == plain.usage.input_tokens


@pytest.mark.parametrize("model", [GPT, CLAUDE])
@pytest.mark.parametrize("streamed", [False, True])
def test_anthropic_tools_and_image(ant, model, streamed):
    msgs = [{"role": "user", "content": [
        {"type": "text", "text": "Weather where this was taken?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]}]
    kw = dict(model=model, max_tokens=256, tools=[WEATHER_ANT], messages=msgs)
    if streamed:
        with ant.messages.stream(**kw) as s:
            m = s.get_final_message()
    else:
        m = ant.messages.create(**kw)
    assert m.stop_reason == "tool_use"
    use = next(b for b in m.content if b.type == "tool_use")
    assert use.name == "get_weather" and isinstance(use.input["city"], str)
    msgs += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in m.content]},
             {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "18°C"}]}]
    m2 = ant.messages.create(model=model, max_tokens=64, tools=[WEATHER_ANT], messages=msgs)
    assert m2.stop_reason == "end_turn" and m2.content[0].text


def test_anthropic_thinking_and_cache_usage(ant):
    with ant.messages.stream(model=CLAUDE, max_tokens=2048,
                             thinking={"type": "enabled", "budget_tokens": 1024},
                             system=[{"type": "text", "text": "Long shared context.",
                                      "cache_control": {"type": "ephemeral"}}],
                             messages=[{"role": "user", "content": "Hello"}]) as s:
        m = s.get_final_message()
    assert m.content[0].type == "thinking" and m.content[0].thinking
    u = m.usage
    assert u.cache_read_input_tokens > 0 and u.cache_creation_input_tokens > 0


def test_anthropic_usage_from_openai_cache(ant):
    m = ant.messages.create(model=GPT, max_tokens=8, messages=[{"role": "user", "content": "Hi there"}],
                            extra_headers={"x-mock-cached-tokens": "4"})
    assert m.usage.cache_read_input_tokens == 4
    plain = ant.messages.create(model=GPT, max_tokens=8, messages=[{"role": "user", "content": "Hi there"}])
    # OpenAI's prompt tokens include the cached ones; Anthropic's input_tokens exclude them.
    assert m.usage.input_tokens + 4 == plain.usage.input_tokens


@pytest.mark.parametrize("model", [GPT, CLAUDE])
def test_anthropic_count_tokens(ant, model):
    r = ant.messages.count_tokens(model=model, messages=[{"role": "user", "content": "Hello, world"}])
    assert r.input_tokens > 0


def test_anthropic_models_list(ant):
    ids = {m.id for m in ant.models.list()}
    assert {CLAUDE, GPT} <= ids


def test_anthropic_errors(ant, gateway):
    base, _ = gateway
    with pytest.raises(anthropic.NotFoundError):
        ant.messages.create(model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    bad = anthropic.Anthropic(base_url=base, api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model=GPT, max_tokens=5, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.RateLimitError):
        ant.messages.create(model=GPT, max_tokens=5, messages=[{"role": "user", "content": "x"}],
                            extra_headers={"x-mock-status": "429"})
    with pytest.raises(anthropic.OverloadedError):
        ant.messages.create(model=GPT, max_tokens=5, messages=[{"role": "user", "content": "x"}],
                            extra_headers={"x-mock-status": "503"})
    with pytest.raises(anthropic.BadRequestError) as e:
        ant.messages.create(model=GPT, max_tokens=5, top_k=3, messages=[{"role": "user", "content": "x"}])
    assert "top_k" in str(e.value)


def test_anthropic_stream_error_event(ant):
    with pytest.raises(anthropic.APIStatusError) as e:
        with ant.messages.stream(model=GPT, max_tokens=64, messages=[{"role": "user", "content": "x"}],
                                 extra_headers={"x-mock-stream-error-after": "3"}) as s:
            for _ in s:
                pass
    assert "overloaded" in str(e.value).lower()


def test_openai_request_fails_over_from_a_503_openai_backend_to_anthropic(oai):
    """The first target (OpenAI) answers 503; the second (Anthropic) answers, translated back."""
    r = oai.chat.completions.create(model="failover-gpt", messages=[{"role": "user", "content": "Hi"}])
    direct = oai.chat.completions.create(model=CLAUDE, messages=[{"role": "user", "content": "Hi"}])
    assert r.object == "chat.completion" and r.model == "failover-gpt"
    assert r.choices[0].message.content == direct.choices[0].message.content
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens > 0
    chunks = list(oai.chat.completions.create(model="failover-gpt", stream=True,
                                              messages=[{"role": "user", "content": "Hi"}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == r.choices[0].message.content
