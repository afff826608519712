"""The Responses API (``client.responses``) through Tollgate with the official ``openai`` SDK.

To OpenAI's backend it passes through (the mock's ``/v1/responses``); to every other backend
(Anthropic, Bedrock, Gemini, Claude on Vertex, a chat-only vLLM preset) it is translated
through the chat pivot, streams included. The same tests run against each, so what a client
sees does not depend on where the model is served. On translated backends the gateway keeps
replies itself (``previous_response_id``, ``retrieve``, ``input_items``, ``delete``); state it
does not keep (``background``, ``conversation``) is a clear 400 naming the field.
"""

import json

import openai
import pytest

GPT, CLAUDE = "gpt-4o-mini", "claude-sonnet-4-5"
# Passthrough first, then each wire format the request is translated to.
MODELS = [GPT, CLAUDE, "bedrock-claude", "gemini-2.0-flash", "vertex-claude", "local-llama"]
TRANSLATED = MODELS[1:]
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


@pytest.mark.parametrize("model", MODELS)
def test_plain_response(client, model):
    r = client.responses.create(model=model, input="Say something.", instructions="Be terse.")
    assert r.object == "response" and r.status == "completed"
    assert r.id.startswith("resp_")
    assert r.output[0].type == "message" and r.output[0].id.startswith("msg_")
    assert r.output_text
    assert r.model == model
    u = r.usage
    assert u.input_tokens > 0 and u.output_tokens > 0
    assert u.total_tokens == u.input_tokens + u.output_tokens


@pytest.mark.parametrize("model", MODELS)
def test_streamed_response_numbers_its_events(client, model):
    events = list(client.responses.create(model=model, input="Say something.", stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress",
                         "response.output_item.added", "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.completed"]
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    item_ids = {e.item_id for e in events if hasattr(e, "item_id")}
    assert len(item_ids) == 1
    done = events[-1].response
    assert text and done.output_text == text
    assert events[-4].text == text and events[-3].part.text == text
    assert done.usage.output_tokens > 0 and done.usage.input_tokens > 0


@pytest.mark.parametrize("model", MODELS)
def test_stream_helper_gets_the_final_response(client, model):
    with client.responses.stream(model=model, input="Say something.") as s:
        deltas = [e.delta for e in s if e.type == "response.output_text.delta"]
        final = s.get_final_response()
    assert final.output_text == "".join(deltas) and final.status == "completed"


@pytest.mark.parametrize("model", MODELS)
def test_max_output_tokens_makes_it_incomplete(client, model):
    r = client.responses.create(model=model, input="Say something.", max_output_tokens=5)
    assert r.status == "incomplete"
    assert r.incomplete_details.reason == "max_output_tokens"
    assert r.usage.output_tokens == 5


@pytest.mark.parametrize("model", MODELS)
def test_function_call_round_trip(client, model):
    first = client.responses.create(model=model, input="Weather in Paris?", tools=[WEATHER])
    # Claude says a few words before its calls: a message item first, then the call.
    call = next(o for o in first.output if o.type == "function_call")
    assert call.name == "get_weather"
    assert call.id.startswith("fc_") and call.call_id and call.call_id != call.id
    assert "city" in json.loads(call.arguments)
    second = client.responses.create(
        model=model,
        tools=[WEATHER],
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {"type": "function_call", "call_id": call.call_id, "name": call.name,
             "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "18C, cloudy"},
        ],
    )
    assert [o.type for o in second.output] == ["message"] and second.output_text


@pytest.mark.parametrize("model", MODELS)
def test_streamed_function_call(client, model):
    events = list(client.responses.create(
        model=model, input="Weather in Paris?", tools=[WEATHER], stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    added = [e for e in events if e.type == "response.output_item.added"
             and e.item.type == "function_call"]
    assert added and added[0].item.arguments == ""
    args = "".join(e.delta for e in events
                   if e.type == "response.function_call_arguments.delta")
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert done and done[0].arguments == args and done[0].item_id == added[0].item.id
    assert json.loads(args)["city"]
    final = events[-1].response.output[added[0].output_index]
    assert final.arguments == args and final.call_id == added[0].item.call_id


@pytest.mark.parametrize("model", MODELS)
def test_structured_output(client, model):
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"], "additionalProperties": False}
    r = client.responses.create(
        model=model, input="A person.",
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


@pytest.mark.parametrize("field,value", [
    ("background", True),
    ("conversation", "conv_abc"),
])
@pytest.mark.parametrize("model", TRANSLATED)
def test_state_the_gateway_does_not_keep_is_a_400_naming_it(client, model, field, value):
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=model, input="Hi", **{field: value})
    assert err.value.body["param"] == field
    assert "does not keep this state" in err.value.body["message"]


@pytest.mark.parametrize("model", TRANSLATED)
def test_translated_replies_are_kept_and_continued(client, model):
    first = client.responses.create(model=model, input=f"Weather in Paris? ({model})",
                                    tools=[WEATHER], store=True)
    call = next(i for i in first.output if i.type == "function_call")
    # Read back without naming a model: the gateway keeps it.
    got = client.responses.retrieve(first.id)
    assert got.id == first.id and got.output[-1].call_id == call.call_id
    items = client.responses.input_items.list(first.id)
    assert items.data[0].content[0].text == f"Weather in Paris? ({model})"
    # The next turn by id: the model sees the call and answers in text.
    second = client.responses.create(model=model, previous_response_id=first.id, input=[
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
    assert second.status == "completed" and second.output_text
    # Its input items carry the whole history.
    kinds = [i.type for i in client.responses.input_items.list(second.id, order="asc")]
    want = ["message"] + [i.type for i in first.output] + ["function_call_output"]
    assert kinds == want, kinds
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=model, previous_response_id=first.id, input="Hi")
    assert err.value.body["code"] == "previous_response_not_found"


@pytest.mark.parametrize("model", [CLAUDE, "bedrock-claude"])
def test_store_false_keeps_nothing(client, model):
    r = client.responses.create(model=model, input="Hi", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)


def test_state_passes_through_to_openai(client):
    r = client.responses.create(model=GPT, input="Hi", store=True)
    assert r.status == "completed"


def test_a_hosted_tool_is_a_400_where_it_cannot_run(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=CLAUDE, input="Hi", tools=[{"type": "web_search"}])
    assert err.value.body["param"] == "tools[0].type"


def test_images_and_developer_messages_are_translated(client):
    pixel = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
             "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
    for model in TRANSLATED:
        r = client.responses.create(model=model, input=[
            {"role": "developer", "content": "Describe images."},
            {"role": "user", "content": [
                {"type": "input_text", "text": "What is this?"},
                {"type": "input_image", "image_url": pixel, "detail": "auto"},
            ]},
        ])
        assert r.status == "completed" and r.output_text, model


def test_stored_responses_pass_through_to_openai(client):
    # No body and no model: the client names the model's route in a header.
    h = {"x-tollgate-model": GPT}
    r = client.responses.retrieve("resp_abc123", extra_headers=h)
    assert r.id == "resp_abc123" and r.status == "completed" and r.output_text == "Stored."
    assert client.responses.cancel("resp_abc123", extra_headers=h).status == "cancelled"
    # The SDK pages with `after` in the query: every page reaches the backend.
    items = client.responses.input_items.list("resp_abc123", limit=1, extra_headers=h)
    assert [i.id for i in items] == ["msg_in_3", "msg_in_2", "msg_in_1"]
    items = client.responses.input_items.list("resp_abc123", order="asc", extra_headers=h)
    assert [i.content[0].text for i in items.data] == ["Item 1", "Item 2", "Item 3"]
    client.responses.delete("resp_abc123", extra_headers=h)


def test_unknown_stored_responses_are_openais_404(client):
    # Not kept by the gateway, and no route named (or one that keeps none): not found.
    with pytest.raises(openai.NotFoundError) as err:
        client.responses.retrieve("resp_abc123")
    assert err.value.body["message"] == "Response with id 'resp_abc123' not found."
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_abc123", extra_headers={"x-tollgate-model": CLAUDE})
