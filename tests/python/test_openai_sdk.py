"""Drive Tollgate with the official ``openai`` Python SDK against the mock provider.

Covers chat and text completions (plain and streaming), embeddings, model
listing, model override, the SDK's error types, and key isolation.
"""

import openai
import pytest

CHAT = [{"role": "user", "content": "Say something deterministic."}]


@pytest.fixture(scope="session")
def client(gateway):
    base, key = gateway
    return openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=10)


def chat(client, **kw):
    return client.chat.completions.create(model="gpt-4o-mini", messages=CHAT, **kw)


def test_chat_non_streaming(client):
    r = chat(client)
    assert r.object == "chat.completion"
    assert r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop"
    u = r.usage
    assert u.prompt_tokens > 0 and u.completion_tokens > 0
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens
    assert chat(client).choices[0].message.content == r.choices[0].message.content


def test_chat_max_tokens_caps_length(client):
    r = chat(client, max_tokens=3)
    assert r.usage.completion_tokens == 3
    assert r.choices[0].finish_reason == "length"
    assert len(r.choices[0].message.content.split()) == 3


def test_model_override(client):
    raw = client.chat.completions.with_raw_response.create(model="renamed", messages=CHAT)
    assert raw.headers["x-mock-model"] == "llama3"
    assert raw.parse().model == "llama3"


def stream_text(chunks):
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_chat_stream(client):
    # The mock seeds its reply with the model and messages, so the stream carries exactly the
    # non-streaming text, one word per event.
    chunks = list(chat(client, stream=True))
    assert chunks
    assert all(c.usage is None for c in chunks)
    plain = chat(client)
    assert stream_text(chunks) == plain.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_chat_stream_include_usage(client):
    chunks = list(chat(client, stream=True, stream_options={"include_usage": True}))
    last = chunks[-1]
    assert last.choices == []
    content = [c for c in chunks[:-1] if c.choices and c.choices[0].delta.content]
    assert all(c.usage is None for c in chunks[:-1])
    assert last.usage.completion_tokens == len(content)
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens


def test_completions(client):
    kw = dict(model="gpt-4o-mini", prompt="Once upon a time")
    r = client.completions.create(**kw)
    assert r.choices[0].text and r.choices[0].finish_reason == "stop"
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    text = "".join(c.choices[0].text for c in client.completions.create(stream=True, **kw))
    again = "".join(c.choices[0].text for c in client.completions.create(stream=True, **kw))
    assert text and text == again
    assert len(text.split()) == r.usage.completion_tokens


@pytest.mark.parametrize("encoding_format", [openai.NOT_GIVEN, "float"])
def test_embeddings(client, encoding_format):
    kw = dict(model="text-embedding-3-small", dimensions=8, encoding_format=encoding_format)
    one = client.embeddings.create(input="hello", **kw)
    assert len(one.data) == 1 and len(one.data[0].embedding) == 8
    assert all(isinstance(x, float) for x in one.data[0].embedding)
    many = client.embeddings.create(input=["a", "b", "c"], **kw)
    assert [d.index for d in many.data] == [0, 1, 2]
    assert all(len(d.embedding) == 8 for d in many.data)


def test_models_list(client):
    ids = sorted(m.id for m in client.models.list())
    from test_cloud import CLOUD, EMBED
    assert ids == sorted(["claude-sonnet-4-5", "gpt-4o-mini", "renamed", "text-embedding-3-small",
                          "over-rate", "over-quota", "failover-gpt", "local-llama"]
                         + CLOUD + EMBED)


def test_wrong_key_is_authentication_error(gateway):
    bad = openai.OpenAI(base_url=gateway[0] + "/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        chat(bad)
    assert e.value.status_code == 401


def test_unknown_model_is_not_found(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="no-such-model", messages=CHAT)
    assert e.value.status_code == 404
    assert e.value.code == "model_not_found"
    assert e.value.body["code"] == "model_not_found"


def test_empty_model_is_bad_request(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="", messages=CHAT)
    assert e.value.status_code == 400


def test_client_key_headers_not_forwarded(client):
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=CHAT, extra_headers={"x-api-key": client.api_key})
    received = {h.strip().lower() for h in raw.headers["x-mock-request-headers"].split(",")}
    assert "x-api-key" not in received
    assert "authorization" in received  # the backend key, checked by --expect-key
