"""Limit refusals as each official SDK sees them: 429 raised as the SDK's RateLimitError, with
OpenAI's code, `Retry-After` and the `x-ratelimit-*` headers; the Anthropic shape for the
anthropic SDK; and a request that can never fit its quota as a BadRequestError the SDK does not
retry."""

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


@pytest.mark.parametrize("model,code", [("over-rate", "rate_limit_exceeded")])
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


def test_a_request_larger_than_its_whole_quota_is_a_bad_request(oai):
    # `over-quota` allows 1 token a day: this request needs more, so waiting cannot help.
    with pytest.raises(openai.BadRequestError) as e:
        oai.chat.completions.create(model="over-quota", messages=[{"role": "user", "content": "hi"}],
                                    max_tokens=5)
    assert e.value.status_code == 400
    assert e.value.code == "request_exceeds_limit"
    assert "retry-after" not in e.value.response.headers
    assert "can never fit" in e.value.message


def test_anthropic_sdk_sees_rate_limit_errors(ant):
    with pytest.raises(anthropic.RateLimitError) as e:
        ant.messages.create(model="over-rate", max_tokens=10,
                            messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 429
    body = e.value.body
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert "Rate limit reached for model `over-rate`" in body["error"]["message"]
