"""Limit refusals as each official SDK sees them: 429 raised as the SDK's RateLimitError, with
OpenAI's code (`rate_limit_exceeded` or `insufficient_quota`), `Retry-After` and the
`x-ratelimit-*` headers; the Anthropic shape for the anthropic SDK."""

import anthropic
import openai
import pytest


@pytest.fixture(scope="module")
def oai(gateway):
    base, key = gateway
    return openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0)


@pytest.fixture(scope="module")
def ant(gateway):
    base, key = gateway
    return anthropic.Anthropic(base_url=base, api_key=key, max_retries=0)


@pytest.mark.parametrize("model,code", [("over-rate", "rate_limit_exceeded"),
                                        ("over-quota", "insufficient_quota")])
def test_openai_sdk_sees_rate_limit_errors(oai, model, code):
    with pytest.raises(openai.RateLimitError) as e:
        oai.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 429
    assert e.value.code == code
    headers = e.value.response.headers
    assert int(headers["retry-after"]) >= 1
    if model == "over-rate":
        assert headers["x-ratelimit-limit-requests"] == "0"
        assert headers["x-ratelimit-remaining-requests"] == "0"
        assert headers["x-ratelimit-reset-requests"].endswith("s")


def test_anthropic_sdk_sees_rate_limit_errors(ant):
    with pytest.raises(anthropic.RateLimitError) as e:
        ant.messages.create(model="over-rate", max_tokens=10,
                            messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 429
    body = e.value.body
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert "Rate limit reached for model `over-rate`" in body["error"]["message"]
