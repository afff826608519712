"""The Responses API (``client.responses``) through Tollgate with the official ``openai`` SDK.

To OpenAI-format backends it passes through (the mock's ``/v1/responses``); a backend that
cannot serve it yet (Anthropic) is a clear 400 naming the endpoint, never a silent drop.
"""

import json

import openai
import pytest

GPT, CLAUDE = "gpt-4o-mini", "claude-sonnet-4-5"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


@pytest.fixture(scope="session")
def client(gateway):
    base, key = gateway
    return openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=10)


def test_plain_response(client):
    r = client.responses.create(model=GPT, input="Say something.", instructions="Be terse.")
    assert r.object == "response" and r.status == "completed"
    assert r.output_text
    assert r.model == GPT
    u = r.usage
    assert u.input_tokens > 0 and u.output_tokens > 0
    assert u.total_tokens == u.input_tokens + u.output_tokens


def test_streamed_response_numbers_its_events(client):
    events = list(client.responses.create(model=GPT, input="Say something.", stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = events[-1].response
    assert text and done.output_text == text
    assert done.usage.output_tokens > 0


def test_max_output_tokens_makes_it_incomplete(client):
    r = client.responses.create(model=GPT, input="Say something.", max_output_tokens=5)
    assert r.status == "incomplete"
    assert r.incomplete_details.reason == "max_output_tokens"
    assert r.usage.output_tokens == 5


def test_function_call_round_trip(client):
    first = client.responses.create(model=GPT, input="Weather in Paris?", tools=[WEATHER])
    call = first.output[0]
    assert call.type == "function_call" and call.name == "get_weather"
    assert "city" in json.loads(call.arguments)
    second = client.responses.create(
        model=GPT,
        tools=[WEATHER],
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {"type": "function_call", "call_id": call.call_id, "name": call.name,
             "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "18C, cloudy"},
        ],
    )
    assert second.output[0].type == "message" and second.output_text


def test_streamed_function_call(client):
    events = list(client.responses.create(
        model=GPT, input="Weather in Paris?", tools=[WEATHER], stream=True))
    args = "".join(e.delta for e in events
                   if e.type == "response.function_call_arguments.delta")
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert done and done[0].arguments == args
    assert json.loads(args)["city"]


def test_structured_output(client):
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"], "additionalProperties": False}
    r = client.responses.create(
        model=GPT, input="A person.",
        text={"format": {"type": "json_schema", "name": "person", "schema": schema, "strict": True}},
    )
    doc = json.loads(r.output_text)
    assert set(doc) == {"name", "age"} and isinstance(doc["age"], int)


def test_input_tokens_pass_through_or_are_estimated(client):
    n = client.responses.input_tokens.count(model=GPT, input="Tell me a joke.")
    assert n.object == "response.input_tokens" and n.input_tokens > 0
    # Anthropic's backend has no Responses counter: the gateway estimates.
    e = client.responses.input_tokens.count(model=CLAUDE, input="Tell me a joke.")
    assert e.object == "response.input_tokens" and e.input_tokens > 0


def test_a_backend_without_responses_is_a_clear_400(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=CLAUDE, input="Hi")
    assert "/v1/responses" in str(err.value)
