"""Conformance: every front × every provider format × (reply, stream, error) on the wire.

Each front (OpenAI chat completions, OpenAI Responses, Anthropic Messages) is called with raw
HTTP (an SDK would hide extra fields) for a model on each of the mock's provider APIs (OpenAI,
Anthropic, Bedrock, Gemini), and every body and every SSE event is validated strictly:

* OpenAI shapes against OpenAI's published OpenAPI document: a pinned excerpt in
  ``tests/conformance/openai-openapi-excerpt.json`` (its source commit in its ``source``;
  ``tests/conformance/extract.py`` regenerates it), converted to JSON Schema 2020-12 with every
  object closed (``unevaluatedProperties: false`` wherever the spec does not say otherwise).
* Anthropic shapes against the official ``anthropic`` SDK's types (``anthropic.types``), walked
  recursively: a key the type does not declare fails, a required field missing fails, a value
  of the wrong type (or outside a ``Literal``) fails.

Cases on each front × provider: a text reply, a tool call, both streamed, a reply cut by its
token limit (streamed and not), a 400 for a malformed body and for an invalid one, upstream
429 and 503 (before a stream's first byte too), an upstream error event mid-stream
(``x-mock-stream-error-after``) and a connection cut mid-stream (``x-mock-drop-after``), whose
stream must end with the front's own error event; and ``GET /v1/models`` in both shapes.
Responses streams must also number their events densely, and a translated Anthropic stream
must carry the real input tokens: in ``message_start`` where the provider reports them before
the content, else in the final ``message_delta`` (OpenAI-style and Bedrock upstreams count at
the end; the Anthropic SDK takes the delta's figures).

Nothing here is marked xfail: a failure is a wire-shape violation to fix.
"""

import datetime
import json
import types
import typing
from pathlib import Path

import anthropic.types as at
import httpx
import pydantic
import pytest
from jsonschema import Draft202012Validator

EXCERPT = json.loads((Path(__file__).resolve().parents[1] / "conformance"
                      / "openai-openapi-excerpt.json").read_text())

PROVIDERS = {  # the mock's API each model is served by (tests/python/conftest.py)
    "openai": "gpt-4o-mini",
    "anthropic": "claude-sonnet-4-5",
    "bedrock": "bedrock-claude",
    "gemini": "gemini-2.0-flash",
}
FRONTS = ["chat", "responses", "messages"]
GRID = [pytest.param(f, p, id=f"{f}-{p}") for f in FRONTS for p in PROVIDERS]
ANTHROPIC_VERSION = "2023-06-01"

# ---------------------------------------------------------------------------------------------
# OpenAPI → strict JSON Schema


SCHEMAS = EXCERPT["schemas"]
DOC_ONLY = {"description", "title", "default", "deprecated", "format", "example", "examples"}


def _deref(node):
    while isinstance(node, dict) and "$ref" in node:
        node = SCHEMAS[node["$ref"].rsplit("/", 1)[-1]]
    return node


def _merge_all_of(node):
    """An ``allOf`` of plain object schemas as one object schema (properties and required
    united), or None where a member is more than that. One closed object reports an extra
    field as such even when a member also misses a required one (``unevaluatedProperties``
    would call every field of a failing member unexpected)."""
    props, required = {}, []
    for member in node["allOf"]:
        m = _deref(member)
        if "allOf" in m:
            m = _merge_all_of(m)
            if m is None:
                return None
        if set(m) - DOC_ONLY - {"type", "properties", "required"} or m.get("type", "object") != "object":
            return None
        props.update(m.get("properties", {}))
        required += [r for r in m.get("required", []) if r not in required]
    rest = {k: v for k, v in node.items() if k != "allOf"}
    if set(rest) - DOC_ONLY - {"type"}:
        return None
    return {"type": "object", "properties": props, "required": required}


def _tag(member, key):
    """The single value of ``key`` that picks this union member, if there is one."""
    m = _deref(member)
    if "allOf" in m:
        m = _merge_all_of(m) or {}
    p = m.get("properties", {}).get(key, {})
    values = [p["const"]] if "const" in p else p.get("enum", [])
    return values[0] if len(values) == 1 and key in m.get("required", []) else None


def _dispatch(node, members, open_top, name):
    """A union whose members each carry a distinct tag (``type``, or the discriminator's
    property): validated against the member the tag names, so a violation is reported inside
    that member rather than as "not valid under any of the given schemas"."""
    key = node.get("discriminator", {}).get("propertyName", "type")
    if not all(isinstance(m, dict) and set(m) == {"$ref"} for m in members):
        return None
    tags = [_tag(m, key) for m in members]
    if None in tags or len(set(tags)) != len(tags):
        return None
    return {
        "type": "object",
        "required": [key],
        "properties": {key: {"enum": tags}},
        "allOf": [{"if": {"properties": {key: {"const": t}}},
                   "then": _convert(m, open_top, name)} for t, m in zip(tags, members)],
    }


def _convert(node, open_top=False, name=None):
    """One OpenAPI 3.x schema node as JSON Schema 2020-12, closed unless the spec opens it.

    Objects with ``properties`` get ``additionalProperties: false`` where the spec does not
    say otherwise; ``allOf`` of objects is merged into one closed object; a tagged union picks
    its member by tag. ``open_top`` leaves this node's own level open: it is a member of an
    ``allOf`` that could not be merged (or a mix-in ``anyOf`` beside ``properties``), whose
    parent closes the union of members' fields with ``unevaluatedProperties``. Nested levels
    are closed again.
    """
    if isinstance(node, list):
        return [_convert(v, name=name) for v in node]
    if not isinstance(node, dict):
        return node
    if "allOf" in node:
        merged = _merge_all_of(node)
        if merged is not None:
            return _convert(merged, open_top, name)
    for k in ("oneOf", "anyOf"):
        if k in node and "properties" not in node:
            d = _dispatch(node, node[k], open_top, name)
            if d is not None:
                return d
    out = {}
    mixin = "properties" in node
    for k, v in node.items():
        if k == "$ref":
            out[k] = f"#/$defs/{v.rsplit('/', 1)[-1]}" + ("~open" if open_top else "")
        elif k == "$recursiveRef":
            out["$ref"] = f"#/$defs/{name}"
        elif k == "$recursiveAnchor":
            continue
        elif k in ("properties", "patternProperties", "$defs", "dependentSchemas"):
            out[k] = {p: _convert(s, name=name) for p, s in v.items()}
        elif k == "allOf":
            out[k] = [_convert(s, True, name) for s in v]
        elif k in ("anyOf", "oneOf"):
            out[k] = [_convert(s, open_top or mixin, name) for s in v]
        elif k in ("items", "additionalProperties", "not", "contains", "propertyNames",
                   "unevaluatedProperties", "unevaluatedItems", "if", "then", "else"):
            out[k] = _convert(v, name=name)
        elif k == "prefixItems":
            out[k] = [_convert(s, name=name) for s in v]
        elif k in ("nullable", "discriminator") or k.startswith("x-"):
            continue
        else:
            out[k] = v
    said = {"additionalProperties", "unevaluatedProperties", "patternProperties"} & set(out)
    if not open_top and not said:
        if "properties" in out and not {"allOf", "anyOf", "oneOf"} & set(out):
            out["additionalProperties"] = False
        elif "properties" in out or "allOf" in out:
            out["unevaluatedProperties"] = False
    if node.get("nullable") is True:
        out = {"anyOf": [out, {"type": "null"}]}
    return out


def _defs():
    defs = {}
    for name, schema in SCHEMAS.items():
        defs[name] = _convert(schema, name=name)
        defs[name + "~open"] = _convert(schema, True, name)
    return defs


DEFS = _defs()
VALIDATORS = {}


def _explain(err):
    """The causes of one error: for a union, those of the branch that came closest (one whose
    own type, tag or enum matched the value, with the fewest errors)."""
    if not err.context:
        return [err]
    branches = {}
    for e in err.context:
        branches.setdefault(e.schema_path[0], []).append(e)
    def near(errs):
        top_miss = any(not e.relative_path and e.validator in ("type", "const", "enum")
                       for e in errs)
        return (top_miss, len(errs))
    best = min(branches.values(), key=near)
    return [c for e in best for c in _explain(e)]


def openai_violations(instance, schema_name):
    """Every violation of the spec's ``schema_name`` by ``instance``, one line each."""
    v = VALIDATORS.get(schema_name)
    if v is None:
        v = VALIDATORS[schema_name] = Draft202012Validator(
            {"$defs": DEFS, "$ref": f"#/$defs/{schema_name}"})
    out = []
    for err in v.iter_errors(instance):
        for cause in _explain(err):
            msg = cause.message
            if cause.validator == "enum" and len(cause.validator_value) > 6:
                values = ", ".join(map(repr, cause.validator_value[:4]))
                msg = (f"{cause.instance!r} is not in the spec's enum "
                       f"({len(cause.validator_value)} values: {values}, ...)")
            line = f"{schema_name}: {cause.json_path}: {msg[:300]}"
            if line not in out:
                out.append(line)
    return out


def stream_event_violations(event):
    name = EXCERPT["response_stream_events"].get(event.get("type"))
    if name is None:
        return [f"ResponseStreamEvent: no variant (in the excerpt) has type {event.get('type')!r}"]
    return openai_violations(event, name)

# ---------------------------------------------------------------------------------------------
# anthropic SDK types → strict check

# Fields the SDK types as Optional but the API always sends (null when empty): their absence is
# a missing field. ModelInfo: the current fields of a model entry.
ALWAYS_SENT = {
    at.ModelInfo: {"capabilities", "max_input_tokens", "max_tokens"},
    at.Message: {"stop_reason", "stop_sequence"},
}


def _discriminator(metadata):
    for m in metadata:
        d = getattr(m, "discriminator", None)
        if d:
            return d
    return None


def anthropic_violations(value, tp, path="$"):
    """Every way ``value`` (parsed JSON) is not an instance of the SDK type ``tp``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        inner, disc = args[0], _discriminator(args[1:])
        if disc and isinstance(value, dict) and typing.get_origin(inner) in (typing.Union, types.UnionType):
            for member in typing.get_args(inner):
                f = getattr(member, "model_fields", {}).get(disc)
                if f is not None and value.get(disc) in typing.get_args(f.annotation):
                    return anthropic_violations(value, member, path)
            return [f"{path}.{disc}: {value.get(disc)!r} is no variant of {_name(inner)}"]
        return anthropic_violations(value, inner, path)
    if tp is typing.Any or tp is object:
        return []
    if tp is type(None):
        return [] if value is None else [f"{path}: {value!r} is not null"]
    if origin in (typing.Union, types.UnionType):
        tries = [anthropic_violations(value, a, path) for a in args]
        if any(not t for t in tries):
            return []
        return min(tries, key=len)
    if origin is typing.Literal:
        ok = any(value == a and type(value) is type(a) for a in args)
        return [] if ok else [f"{path}: {value!r} not one of {list(args)}"]
    if origin in (list, typing.List):
        if not isinstance(value, list):
            return [f"{path}: {_short(value)} is not an array"]
        return [e for i, v in enumerate(value) for e in anthropic_violations(v, args[0], f"{path}[{i}]")]
    if origin in (dict, typing.Dict):
        if not isinstance(value, dict):
            return [f"{path}: {_short(value)} is not an object"]
        return [e for k, v in value.items() for e in anthropic_violations(v, args[1], f"{path}.{k}")]
    if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
        return _model_violations(value, tp, path)
    if tp is str:
        return [] if isinstance(value, str) else [f"{path}: {_short(value)} is not a string"]
    if tp is bool:
        return [] if isinstance(value, bool) else [f"{path}: {_short(value)} is not a boolean"]
    if tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{path}: {_short(value)} is not an integer"]
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return [] if ok else [f"{path}: {_short(value)} is not a number"]
    if tp is datetime.datetime:
        try:
            datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
            return []
        except (AttributeError, ValueError):
            return [f"{path}: {_short(value)} is not an RFC 3339 date-time"]
    raise TypeError(f"{path}: no rule for the SDK type {tp!r}")


def _model_violations(value, model, path):
    if not isinstance(value, dict):
        return [f"{path}: {_short(value)} is not an object ({model.__name__})"]
    out = []
    fields = {(f.alias or n): f for n, f in model.model_fields.items()}
    for k in value:
        if k not in fields:
            out.append(f"{path}.{k}: not a field of {model.__name__}")
    for k, f in fields.items():
        if k in value:
            ann = f.annotation
            if f.metadata:
                ann = typing.Annotated[(ann, *f.metadata)]
            out += anthropic_violations(value[k], ann, f"{path}.{k}")
        elif f.is_required():
            out.append(f"{path}.{k}: missing (required by {model.__name__})")
        elif k in ALWAYS_SENT.get(model, ()):
            out.append(f"{path}.{k}: missing (a field of {model.__name__} the API always sends)")
    return out


def _name(tp):
    return getattr(tp, "__name__", None) or str(tp)


def _short(v):
    s = json.dumps(v)
    return s if len(s) < 80 else s[:77] + "..."


def models_page_violations(page):
    """``GET /v1/models`` in Anthropic's shape: the SDK's page fields, entries ``ModelInfo``."""
    out = []
    for k in page:
        if k not in ("data", "has_more", "first_id", "last_id"):
            out.append(f"$.{k}: not a field of the models page")
    out += anthropic_violations(page.get("data"), typing.List[at.ModelInfo], "$.data")
    out += anthropic_violations(page.get("has_more"), bool, "$.has_more")
    for k in ("first_id", "last_id"):
        if k not in page:
            out.append(f"$.{k}: missing")
        out += anthropic_violations(page.get(k), typing.Optional[str], f"$.{k}")
    return out

# ---------------------------------------------------------------------------------------------
# requests


WEATHER_PARAMS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TOOLS = {
    "chat": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                               "parameters": WEATHER_PARAMS}}],
    "responses": [{"type": "function", "name": "get_weather", "description": "Weather",
                   "parameters": WEATHER_PARAMS}],
    "messages": [{"name": "get_weather", "description": "Weather", "input_schema": WEATHER_PARAMS}],
}
PATHS = {"chat": "/v1/chat/completions", "responses": "/v1/responses", "messages": "/v1/messages"}


def body(front, model, *, stream=False, tools=False, text="Hello"):
    if front == "chat":
        b = {"model": model, "messages": [{"role": "user", "content": text}]}
        if stream:
            b["stream_options"] = {"include_usage": True}
    elif front == "responses":
        b = {"model": model, "input": text}
    else:
        b = {"model": model, "max_tokens": 256, "messages": [{"role": "user", "content": text}]}
    if stream:
        b["stream"] = True
    if tools:
        b["tools"] = TOOLS[front]
    return b


def headers(front, key, extra=None):
    h = ({"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION} if front == "messages"
         else {"authorization": f"Bearer {key}"})
    return {**h, **(extra or {})}


@pytest.fixture(scope="module")
def http(gateway):
    base, key = gateway
    with httpx.Client(base_url=base, timeout=15) as c:
        c.key = key
        yield c


def post(http, front, payload, extra_headers=None):
    r = http.post(PATHS[front], json=payload, headers=headers(front, http.key, extra_headers))
    return r.status_code, r.headers, r.content


def post_stream(http, front, payload, extra_headers=None):
    """The raw bytes of a streamed reply, up to where the connection ended (a cut included)."""
    raw, cut = b"", None
    with http.stream("POST", PATHS[front], json=payload,
                     headers=headers(front, http.key, extra_headers)) as r:
        try:
            for chunk in r.iter_raw():
                raw += chunk
        except httpx.HTTPError as e:
            cut = e
    return r.status_code, r.headers, raw, cut


def sse(raw):
    """Server-sent events as ``(event name or None, data text)``, in order."""
    events = []
    text = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    for block in text.split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            field, _, val = line.partition(":")
            val = val[1:] if val.startswith(" ") else val
            if field == "event":
                name = val
            elif field == "data":
                data.append(val)
        if data:
            events.append((name, "\n".join(data)))
    return events


def parse_json(raw, where):
    try:
        return json.loads(raw)
    except ValueError:
        pytest.fail(f"{where}: not JSON: {raw[:200]!r}")

# ---------------------------------------------------------------------------------------------
# per-front validation of replies, streams and errors


def reply_violations(front, doc):
    if front == "chat":
        return openai_violations(doc, "CreateChatCompletionResponse")
    if front == "responses":
        return openai_violations(doc, "Response")
    return anthropic_violations(doc, at.Message)


def error_violations(front, doc):
    if front == "messages":
        return anthropic_violations(doc, at.ErrorResponse)
    return openai_violations(doc, "ErrorResponse")


def stream_violations(front, raw):
    """Every violation in a stream, and the parsed events (name, JSON or ``"[DONE]"``)."""
    out, events = [], []
    for i, (name, data) in enumerate(sse(raw)):
        where = f"event {i} ({name or 'data'})"
        if front == "chat" and data == "[DONE]":
            events.append((name, "[DONE]"))
            continue
        try:
            doc = json.loads(data)
        except ValueError:
            out.append(f"{where}: data is not JSON: {data[:120]!r}")
            continue
        events.append((name, doc))
        if front == "chat":
            if name is not None:
                out.append(f"{where}: chat completion streams have no `event:` lines")
            errs = (openai_violations(doc, "ErrorResponse") if "error" in doc
                    else openai_violations(doc, "CreateChatCompletionStreamResponse"))
        elif front == "responses":
            if name != doc.get("type"):
                out.append(f"{where}: `event: {name}` but data type {doc.get('type')!r}")
            errs = stream_event_violations(doc)
        else:
            if name != doc.get("type"):
                out.append(f"{where}: `event: {name}` but data type {doc.get('type')!r}")
            t = doc.get("type")
            if t == "ping":
                errs = [] if doc == {"type": "ping"} else [f"ping carries {sorted(doc)}"]
            elif t == "error":
                errs = anthropic_violations(doc, at.ErrorResponse)
            else:
                errs = anthropic_violations(doc, at.RawMessageStreamEvent)
        out += [f"{where}: {e}" for e in errs]
    if front == "responses":
        seqs = [d.get("sequence_number") for _, d in events]
        if seqs != list(range(len(seqs))):
            out.append(f"sequence_number not 0..{len(seqs) - 1} in order: {seqs}")
    return out, events


def kinds(front, events):
    if front == "chat":
        return ["[DONE]" if d == "[DONE]" else ("error" if "error" in d else "chunk") for _, d in events]
    return [d.get("type") for _, d in events]


def assert_clean(violations):
    assert not violations, "\n".join(violations)


# ---------------------------------------------------------------------------------------------
# the grid


@pytest.mark.parametrize("front,provider", GRID)
def test_text_reply(http, front, provider):
    status, _, raw = post(http, front, body(front, PROVIDERS[provider]))
    assert status == 200, raw[:300]
    assert_clean(reply_violations(front, parse_json(raw, "reply")))


@pytest.mark.parametrize("front,provider", GRID)
def test_tool_call_reply(http, front, provider):
    status, _, raw = post(http, front, body(front, PROVIDERS[provider], tools=True,
                                             text="Weather in Paris?"))
    assert status == 200, raw[:300]
    doc = parse_json(raw, "reply")
    assert_clean(reply_violations(front, doc))
    # the case is a tool call: make sure one came back, so its shape was checked
    calls = {"chat": lambda d: d["choices"][0]["message"].get("tool_calls"),
             "responses": lambda d: [o for o in d["output"] if o["type"] == "function_call"],
             "messages": lambda d: [b for b in d["content"] if b["type"] == "tool_use"]}
    assert calls[front](doc), "no tool call in the reply"


def _stream_case(http, front, provider, tools):
    payload = body(front, PROVIDERS[provider], stream=True, tools=tools,
                   text="Weather in Paris?" if tools else "Hello")
    status, hdrs, raw, cut = post_stream(http, front, payload)
    assert status == 200, raw[:300]
    assert cut is None, f"connection cut: {cut!r}"
    assert hdrs.get("content-type", "").startswith("text/event-stream")
    violations, events = stream_violations(front, raw)
    k = kinds(front, events)
    last = {"chat": "[DONE]", "responses": "response.completed", "messages": "message_stop"}[front]
    if not k or k[-1] != last:
        violations.append(f"the stream ends with {k[-1:]} instead of {last!r}")
    if front == "messages":
        start = next((d for _, d in events if d.get("type") == "message_start"), None)
        delta = [d for _, d in events if d.get("type") == "message_delta"]
        final = (delta[-1].get("usage") or {}).get("input_tokens") if delta else None
        if start and start["message"]["usage"]["input_tokens"] == 0 and not final:
            violations.append(
                "input tokens: 0 in message_start and none in the final message_delta"
            )
    return violations, events


@pytest.mark.parametrize("front,provider", GRID)
def test_streamed_text(http, front, provider):
    violations, _ = _stream_case(http, front, provider, tools=False)
    assert_clean(violations)


@pytest.mark.parametrize("front,provider", GRID)
def test_streamed_tool_call(http, front, provider):
    violations, events = _stream_case(http, front, provider, tools=True)
    k = kinds(front, events)
    docs = [d for _, d in events if isinstance(d, dict)]
    has_call = {
        "chat": lambda: any(d.get("choices") and d["choices"][0]["delta"].get("tool_calls")
                            for d in docs),
        "responses": lambda: "response.function_call_arguments.delta" in k,
        "messages": lambda: any(d.get("type") == "content_block_start"
                                and d["content_block"]["type"] == "tool_use" for d in docs),
    }[front]()
    assert has_call, "no tool call in the stream"
    assert_clean(violations)


BAD = {  # a body each front's API refuses with a 400: a required field missing or mistyped
    "chat": lambda m: {"model": m},
    "responses": lambda m: {"model": m, "input": 42},
    "messages": lambda m: {"model": m, "max_tokens": 16},
}


@pytest.mark.parametrize("front,provider", GRID)
def test_invalid_request_error(http, front, provider):
    status, _, raw = post(http, front, BAD[front](PROVIDERS[provider]))
    assert status == 400, f"a {status} instead of a 400: {raw[:200]!r}"
    assert_clean(error_violations(front, parse_json(raw, "error")))


@pytest.mark.parametrize("front,provider", GRID)
def test_malformed_json_error(http, front, provider):
    payload = b'{"model": "%s", "messages": [' % PROVIDERS[provider].encode()
    r = http.post(PATHS[front], content=payload,
                  headers={**headers(front, http.key), "content-type": "application/json"})
    assert r.status_code == 400, r.content[:300]
    assert_clean(error_violations(front, parse_json(r.content, "error")))


@pytest.mark.parametrize("streamed", [False, True], ids=["reply", "stream"])
@pytest.mark.parametrize("upstream", [429, 503])
@pytest.mark.parametrize("front,provider", GRID)
def test_upstream_error(http, front, provider, upstream, streamed):
    # refused before any byte of the reply: an HTTP error with the front's error body, streams too
    status, _, raw = post(http, front, body(front, PROVIDERS[provider], stream=streamed),
                          {"x-mock-status": str(upstream)})
    assert status >= 400, raw[:300]
    assert_clean(error_violations(front, parse_json(raw, "error")))


LIMIT = {"chat": "max_tokens", "responses": "max_output_tokens", "messages": "max_tokens"}


@pytest.mark.parametrize("streamed", [False, True], ids=["reply", "stream"])
@pytest.mark.parametrize("front,provider", GRID)
def test_truncated_reply(http, front, provider, streamed):
    """A reply cut by its token limit: `length`, `incomplete` (response.incomplete), `max_tokens`."""
    payload = {**body(front, PROVIDERS[provider], stream=streamed), LIMIT[front]: 5}
    if not streamed:
        status, _, raw = post(http, front, payload)
        assert status == 200, raw[:300]
        assert_clean(reply_violations(front, parse_json(raw, "reply")))
        return
    status, _, raw, cut = post_stream(http, front, payload)
    assert status == 200 and cut is None, raw[:300]
    violations, events = stream_violations(front, raw)
    k = kinds(front, events)
    last = {"chat": "[DONE]", "responses": "response.incomplete", "messages": "message_stop"}[front]
    if not k or k[-1] != last:
        violations.append(f"the stream ends with {k[-1:]} instead of {last!r}")
    assert_clean(violations)


def _failing_stream(http, front, provider, fault):
    status, _, raw, _ = post_stream(http, front, body(front, PROVIDERS[provider], stream=True),
                                    fault)
    assert status == 200, raw[:300]
    violations, events = stream_violations(front, raw)
    k = kinds(front, events)
    ends = {"chat": ("error",), "responses": ("error", "response.failed"), "messages": ("error",)}
    # the failure is told in the spec's own terms, as the stream's last event
    tail = [x for x in k if x != "[DONE]"][-1:]
    if not tail or tail[0] not in ends[front]:
        violations.append(f"the stream ends with {k[-2:]}, not an error event {ends[front]}")
    return violations


@pytest.mark.parametrize("front,provider", GRID)
def test_stream_error_mid_way(http, front, provider):
    assert_clean(_failing_stream(http, front, provider, {"x-mock-stream-error-after": "3"}))


@pytest.mark.parametrize("front,provider", GRID)
def test_stream_cut_mid_way(http, front, provider):
    assert_clean(_failing_stream(http, front, provider, {"x-mock-drop-after": "3"}))


def test_models_openai_shape(http):
    r = http.get("/v1/models", headers={"authorization": f"Bearer {http.key}"})
    assert r.status_code == 200, r.text[:300]
    doc = r.json()
    assert doc["data"], "no models listed"
    assert_clean(openai_violations(doc, "ListModelsResponse"))


def test_models_anthropic_shape(http):
    r = http.get("/v1/models", headers={"x-api-key": http.key,
                                        "anthropic-version": ANTHROPIC_VERSION})
    assert r.status_code == 200, r.text[:300]
    doc = r.json()
    assert doc.get("data"), "no models listed"
    assert_clean(models_page_violations(doc))


# ---------------------------------------------------------------------------------------------
# the validators themselves: they must refuse extra, missing and mistyped fields


def test_the_openai_validator_is_strict():
    ok = {"object": "list", "data": [{"id": "m", "object": "model", "created": 1, "owned_by": "x"}]}
    assert not openai_violations(ok, "ListModelsResponse")
    extra = {**ok, "data": [{**ok["data"][0], "extra": 1}]}
    assert any("extra" in v for v in openai_violations(extra, "ListModelsResponse"))
    missing = {"object": "list", "data": [{"id": "m", "object": "model", "created": 1}]}
    assert any("owned_by" in v for v in openai_violations(missing, "ListModelsResponse"))
    typed = {"object": "list", "data": [{**ok["data"][0], "created": "1"}]}
    assert openai_violations(typed, "ListModelsResponse")
    # allOf compositions stay open to their members' fields and closed to others
    ev = {"type": "error", "code": None, "message": "m", "param": None, "sequence_number": 0}
    assert not stream_event_violations(ev)
    assert stream_event_violations({**ev, "error": {}})


def test_the_anthropic_check_is_strict():
    ok = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    assert not anthropic_violations(ok, at.ErrorResponse)
    assert anthropic_violations({**ok, "extra": 1}, at.ErrorResponse)
    assert anthropic_violations({"type": "error"}, at.ErrorResponse)
    assert anthropic_violations({**ok, "error": {"type": "overloaded_error", "message": 5}},
                                at.ErrorResponse)
    assert anthropic_violations({"type": "message_stop", "x": 1}, at.RawMessageStreamEvent)
    msg = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
           "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
           "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}}
    assert not anthropic_violations(msg, at.Message)
    nested = {**msg, "content": [{"type": "text", "text": "hi", "x": 1}]}
    assert anthropic_violations(nested, at.Message) == ["$.content[0].x: not a field of TextBlock"]
    typed = {**msg, "usage": {"input_tokens": "1", "output_tokens": 1}}
    assert anthropic_violations(typed, at.Message) == ['$.usage.input_tokens: "1" is not an integer']
    assert anthropic_violations({k: v for k, v in msg.items() if k != "usage"}, at.Message)


def test_the_openai_validator_reports_inside_unions_and_compositions():
    # Response is an allOf of three objects: merged, an extra field is named as such even
    # when a required one is missing too; a tagged union (output items) reports inside the
    # member its `type` names.
    r = {"id": "resp_1", "object": "response", "created_at": 1, "status": "completed",
         "model": "m", "error": None, "incomplete_details": None, "instructions": None,
         "tools": [], "parallel_tool_calls": True, "metadata": {}, "tool_choice": "auto",
         "temperature": 1, "top_p": 1,
         "output": [{"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                     "content": [{"type": "output_text", "text": "hi", "annotations": [],
                                  "logprobs": []}]}]}
    assert not openai_violations(r, "Response")
    bad = {**r, "bogus": 1, "output": [{**r["output"][0], "content": [{"type": "output_text"}]}]}
    del bad["top_p"]
    got = openai_violations(bad, "Response")
    assert "Response: $: Additional properties are not allowed ('bogus' was unexpected)" in got
    assert "Response: $: 'top_p' is a required property" in got
    assert "Response: $.output[0].content[0]: 'text' is a required property" in got
