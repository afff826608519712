"""The response cache end to end, with the official SDKs and raw HTTP.

Each fixture here starts its own mock provider and gateway (the session gateway of
``conftest.py`` has no cached route). Upstream calls are counted where the upstream sees
them: the mock's ``GET /mock/stats`` ``requests`` counter (it counts every provider request,
errors included, and nothing else runs against these mocks: no health checks are
configured). Replies are deterministic per prompt, so every test puts a fresh nonce in its
prompt: entries never collide across tests or re-runs.

What is shown: a miss is stored and the next identical request is a hit with a fresh id, in
each client API (chat, Messages, Responses) on an OpenAI, an Anthropic, a Bedrock and a
Gemini backend, whole or replayed as a stream in the client's own wire format; the key
ignores key order, whitespace and bookkeeping fields; errors and broken streams are never
stored; ``no-store``, ``no-cache`` and ``x-tollgate-cache-ttl``; route TTLs; per-key and
global scope; coalescing; eviction under ``max_bytes`` and ``max_entry_bytes``; the access
log, the ledger, limits and metrics of a hit; the admin ``/cache`` endpoint.
"""

import concurrent.futures
import hashlib
import json
import re
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field

import anthropic
import httpx
import openai
import pytest

from conftest import (AWS_KEY_ID, AWS_SECRET, BIN, UPSTREAM_KEY, accepts, free_port, healthy,
                      wait_until)

ADMIN_TOKEN = "cache-admin-token"
KEYS = {"team-a": "sk-cache-team-a", "team-b": "sk-cache-team-b", "budget": "sk-cache-budget"}
A, B = KEYS["team-a"], KEYS["team-b"]
# The backend kinds, each behind its own cached route (named `c-KIND`), by the model a
# client asks for.
MODELS = {
    "openai": "gpt-4o-mini",           # chat/Responses pass through, Messages translated
    "anthropic": "claude-sonnet-4-5",  # Messages passes through, chat/Responses translated
    "bedrock": "bedrock-claude",       # translated for every client API
    "gemini": "gemini-2.0-flash",      # translated for every client API
}
FRONTS = ["chat", "messages", "responses"]
HIT = "tollgate; hit"
STORED = "tollgate; fwd=miss; stored"
MISS = "tollgate; fwd=miss"
# Budget route: 300 tokens a day for key `budget` (see test_a_hit_does_not_spend_the_token_budget).
BUDGET_TOKENS = 300
POLL_S = 10.0


# ---------------------------------------------------------------------------------------------
# Helpers: a mock + gateway pair, polling, metrics.


def poll(check, what, timeout=POLL_S):
    """`check()`'s first truthy value, polled until `timeout` (then the test fails)."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def nonce(tag=""):
    """A prompt no other request has sent (replies are deterministic per prompt)."""
    return f"Say something. [{tag} {uuid.uuid4().hex[:12]}]"


METRIC_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Stack:
    """One `tollgate mock` and one gateway in front of it, killed by `close()`.

    `config(mock_port)` returns the gateway config below its `[server]` table, which the
    stack writes (listeners, and the admin token when `admin_token` is set).
    """

    def __init__(self, tmp, config, server_extra="", admin_token=None):
        self.tmp = tmp
        self.admin_token = admin_token
        mock_port, gw_port, admin_port = free_port(), free_port(), free_port()
        self.base = f"http://127.0.0.1:{gw_port}"
        self.admin = f"http://127.0.0.1:{admin_port}"
        self.mock = f"http://127.0.0.1:{mock_port}"
        token = f'admin_token = "{admin_token}"\n' if admin_token else ""
        (tmp / "tollgate.toml").write_text(
            f'[server]\nlisten = ["127.0.0.1:{gw_port}"]\nadmin_listen = "127.0.0.1:{admin_port}"\n'
            f"{token}{server_extra}\n{config(mock_port)}")
        self.procs, self.logs = [], []
        try:
            log = self._log("mock.log")
            # `--retry-after 0`: an injected error does not cool the backend down for the next test.
            mock = self._spawn([BIN, "mock", "--listen", f"127.0.0.1:{mock_port}",
                                "--expect-key", UPSTREAM_KEY, "--aws-access-key-id", AWS_KEY_ID,
                                "--aws-secret-access-key", AWS_SECRET, "--retry-after", "0",
                                "--threads", "4"], log)
            wait_until(lambda: accepts(mock_port), mock, "mock", log)
            log = self._log("gateway.log")
            gw = self._spawn([BIN, "run", "-c", str(tmp / "tollgate.toml")], log)
            wait_until(lambda: healthy(admin_port) and accepts(gw_port), gw, "gateway", log)
        except BaseException:
            self.close()
            raise
        self.http = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=64))
        self._clients = {}

    def _log(self, name):
        f = open(self.tmp / name, "w+b")
        self.logs.append(f)
        return f

    def _spawn(self, argv, log):
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def close(self):
        for p in self.procs:
            p.kill()
            p.wait()
        for f in self.logs:
            f.close()
        for c in getattr(self, "_clients", {}).values():
            c.close()
        if hasattr(self, "http"):
            self.http.close()

    # Clients -----------------------------------------------------------------------------

    def oai(self, key=A):
        if ("oai", key) not in self._clients:
            self._clients["oai", key] = openai.OpenAI(
                base_url=f"{self.base}/v1", api_key=key or "none", max_retries=0, timeout=30)
        return self._clients["oai", key]

    def ant(self, key=A):
        if ("ant", key) not in self._clients:
            self._clients["ant", key] = anthropic.Anthropic(
                base_url=self.base, api_key=key or "none", max_retries=0, timeout=30)
        return self._clients["ant", key]

    def call(self, front, model, text, *, stream=False, key=A, headers=None, **extra):
        """One request through `front` with its SDK; see `Reply`. Responses requests say
        `store: false` unless told otherwise: a Responses request OpenAI keeps itself is not
        cached where the API is passed through (see the test for that)."""
        if front == "responses":
            extra.setdefault("store", False)
        client = self.ant(key) if front == "messages" else self.oai(key)
        return CALLS[front](client, model, text, stream, headers or {}, extra)

    def post(self, path, body, *, key=A, headers=None):
        """A raw POST: `body` is sent as given when bytes, else as JSON."""
        h = {"content-type": "application/json", **(headers or {})}
        if key:
            h["authorization"] = f"Bearer {key}"
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.http.post(self.base + path, content=content, headers=h)

    def chat_raw(self, text, *, model=MODELS["openai"], key=A, headers=None, **extra):
        body = {"model": model, "messages": [{"role": "user", "content": text}], **extra}
        return self.post("/v1/chat/completions", body, key=key, headers=headers)

    # What the upstream and the gateway report ------------------------------------------------

    def upstream(self):
        """Requests the mock has received (every provider call, errors included)."""
        return self.http.get(f"{self.mock}/mock/stats").json()["requests"]

    def admin_get(self, path, *, token=True, method="GET"):
        h = {"authorization": f"Bearer {self.admin_token}"} if token and self.admin_token else {}
        return self.http.request(method, self.admin + path, headers=h)

    def metrics(self):
        """Every sample: `{(name, frozenset(labels.items())): value}`."""
        text = self.admin_get("/metrics").text
        out = {}
        for line in text.splitlines():
            m = METRIC_LINE.match(line)
            if m and not line.startswith("#"):
                labels = frozenset(LABEL.findall(m.group(2) or ""))
                out[m.group(1), labels] = float(m.group(3))
        return out

    def metric(self, name, samples=None, **labels):
        """The sum of `name`'s samples whose labels include `labels` (0 when none)."""
        samples = self.metrics() if samples is None else samples
        want = set(labels.items())
        return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


@dataclass
class Reply:
    """What a client got: the headers, the text, the top-level id, (input, output) tokens,
    the whole JSON body (not for streams), the stream's events (streams only)."""
    headers: httpx.Headers
    text: str
    id: str
    usage: tuple
    body: dict = None
    events: list = field(default_factory=list)

    @property
    def cache(self):
        return self.headers.get("cache-status")


def _chat(client, model, text, stream, headers, extra):
    kw = dict(model=model, messages=[{"role": "user", "content": text}], extra_headers=headers,
              **extra)
    if not stream:
        raw = client.chat.completions.with_raw_response.create(**kw)
        c = raw.parse()
        u = c.usage
        return Reply(raw.headers, c.choices[0].message.content, c.id,
                     (u.prompt_tokens, u.completion_tokens), json.loads(raw.text))
    kw.setdefault("stream_options", {"include_usage": True})
    with client.chat.completions.with_streaming_response.create(stream=True, **kw) as r:
        chunks = list(r.parse())
        headers = r.headers
    assert len({c.id for c in chunks}) == 1, "one id for the whole stream"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes in (["stop"], ["length"], ["tool_calls"]), finishes
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None, "the usage chunk comes last"
    u = last.usage
    return Reply(headers, text, last.id, (u.prompt_tokens, u.completion_tokens), events=chunks)


def _messages(client, model, text, stream, headers, extra):
    kw = dict(model=model, max_tokens=64, messages=[{"role": "user", "content": text}],
              extra_headers=headers, **extra)
    if not stream:
        raw = client.messages.with_raw_response.create(**kw)
        m = raw.parse()
        body = "".join(b.text for b in m.content if b.type == "text")
        return Reply(raw.headers, body, m.id, (m.usage.input_tokens, m.usage.output_tokens),
                     json.loads(raw.text))
    with client.messages.with_streaming_response.create(stream=True, **kw) as r:
        events = list(r.parse())
        headers = r.headers
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"], kinds
    assert kinds.count("content_block_start") == kinds.count("content_block_stop") >= 1
    start, end = events[0].message, events[-2]
    body = "".join(e.delta.text for e in events
                   if e.type == "content_block_delta" and e.delta.type == "text_delta")
    assert end.delta.stop_reason in ("end_turn", "max_tokens", "tool_use")
    # `message_delta`'s usage is cumulative; a translated live stream knows the prompt's
    # tokens only at its end (its `message_start` says 0).
    prompt = end.usage.input_tokens
    if prompt is None:
        prompt = start.usage.input_tokens
    return Reply(headers, body, start.id, (prompt, end.usage.output_tokens), events=events)


def _responses(client, model, text, stream, headers, extra):
    kw = dict(model=model, input=text, extra_headers=headers, **extra)
    if not stream:
        raw = client.responses.with_raw_response.create(**kw)
        r = raw.parse()
        return Reply(raw.headers, r.output_text, r.id,
                     (r.usage.input_tokens, r.usage.output_tokens), json.loads(raw.text))
    with client.responses.with_streaming_response.create(stream=True, **kw) as r:
        events = list(r.parse())
        headers = r.headers
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    done = events[-1].response
    assert len({e.response.id for e in events if hasattr(e, "response")}) == 1
    body = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert done.output_text == body and done.status == "completed"
    return Reply(headers, body, done.id, (done.usage.input_tokens, done.usage.output_tokens),
                 events=events)


CALLS = {"chat": _chat, "messages": _messages, "responses": _responses}


def without_id(body):
    """The body without its id; a Response's items get fresh ids with it (kept Responses are
    found by id), so theirs go too."""
    out = {k: v for k, v in body.items() if k != "id"}
    if body.get("object") == "response":
        out["output"] = [{k: v for k, v in i.items() if k != "id"} for i in body["output"]]
    return out


SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TOOLS = {
    "chat": [{"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}}],
    "messages": [{"name": "get_weather", "input_schema": SCHEMA}],
    "responses": [{"type": "function", "name": "get_weather", "parameters": SCHEMA}],
}


def tool_calls(front, r):
    """[(name, arguments)] of the calls in a reply, whole or streamed."""
    if front == "chat" and r.body:
        calls = r.body["choices"][0]["message"].get("tool_calls") or []
        return [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls]
    if front == "chat":
        calls = {}
        for chunk in r.events:
            for d in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                name, args = calls.get(d.index, ("", ""))
                calls[d.index] = (name + (d.function.name or ""), args + (d.function.arguments or ""))
        return [(n, json.loads(a)) for _, (n, a) in sorted(calls.items())]
    if front == "messages" and r.body:
        return [(b["name"], b["input"]) for b in r.body["content"] if b["type"] == "tool_use"]
    if front == "messages":
        names, args = {}, {}
        for e in r.events:
            if e.type == "content_block_start" and e.content_block.type == "tool_use":
                names[e.index] = e.content_block.name
            if e.type == "content_block_delta" and e.delta.type == "input_json_delta":
                args[e.index] = args.get(e.index, "") + e.delta.partial_json
        return [(names[i], json.loads(args.get(i) or "{}")) for i in sorted(names)]
    output = r.body["output"] if r.body else [o.model_dump() for o in r.events[-1].response.output]
    return [(o["name"], json.loads(o["arguments"])) for o in output if o["type"] == "function_call"]


# ---------------------------------------------------------------------------------------------
# Fixtures.


def _backends(mock_port):
    url = f"http://127.0.0.1:{mock_port}"
    # `eject_after_failures = 0`: injected errors never take a backend out for later tests.
    return f"""
[[backends]]
name = "oa"
provider = "openai"
url = "{url}"
api_key = "{UPSTREAM_KEY}"
eject_after_failures = 0
[[backends]]
name = "an"
provider = "anthropic"
url = "{url}"
api_key = "{UPSTREAM_KEY}"
eject_after_failures = 0
[[backends]]
name = "br"
provider = "bedrock"
url = "{url}"
region = "us-east-1"
aws_access_key_id = "{AWS_KEY_ID}"
aws_secret_access_key = "{AWS_SECRET}"
eject_after_failures = 0
[[backends]]
name = "ge"
provider = "gemini"
url = "{url}"
api_key = "{UPSTREAM_KEY}"
eject_after_failures = 0
"""


def _main_config(tmp):
    def config(mock_port):
        keys = "".join(f'[[keys]]\nname = "{n}"\nsha256 = "{hashlib.sha256(k.encode()).hexdigest()}"\n'
                       for n, k in KEYS.items())
        return f"""
[log]
access_log = "{tmp / 'access.log'}"
[store]
path = "{tmp / 'tollgate.db'}"
flush_interval_ms = 50
[cache]
coalesce_timeout_ms = 20000
[[prices]]
model = "gpt-4o-mini"
input = 1.0
output = 2.0
[[limits]]
scope = "key"
match = "budget"
tokens_per_day = {BUDGET_TOKENS}
{_backends(mock_port)}
[[routes]]
name = "c-openai"
models = ["gpt-4o-mini"]
targets = [{{ backend = "oa" }}]
cache = {{ ttl_seconds = 600 }}
[[routes]]
name = "c-anthropic"
models = ["claude-sonnet-4-5"]
targets = [{{ backend = "an" }}]
cache = {{ ttl_seconds = 600 }}
[[routes]]
name = "c-bedrock"
models = ["bedrock-claude"]
targets = [{{ backend = "br", model = "anthropic.claude-3-haiku-20240307-v1:0" }}]
cache = {{ ttl_seconds = 600 }}
[[routes]]
name = "c-gemini"
models = ["gemini-2.0-flash"]
targets = [{{ backend = "ge" }}]
cache = {{ ttl_seconds = 600 }}
[[routes]]
name = "c-short"
models = ["short-ttl"]
targets = [{{ backend = "oa", model = "gpt-4o-mini" }}]
cache = {{ ttl_seconds = 1 }}
[[routes]]
name = "c-global"
models = ["shared-gpt"]
targets = [{{ backend = "oa", model = "gpt-4o-mini" }}]
cache = {{ ttl_seconds = 600, scope = "global" }}
[[routes]]
name = "c-once"
models = ["once-gpt"]
targets = [{{ backend = "oa", model = "gpt-4o-mini" }}]
retry = {{ attempts = 1 }}
cache = {{ ttl_seconds = 600 }}
[[routes]]
name = "c-budget"
models = ["budget-model"]
targets = [{{ backend = "oa" }}]
cache = {{ ttl_seconds = 600 }}
[[routes]]
name = "c-embed"
models = ["text-embedding-3-small"]
targets = [{{ backend = "oa" }}]
cache = {{ ttl_seconds = 600 }}
[[routes]]
name = "plain"
models = ["plain-gpt"]
targets = [{{ backend = "oa", model = "gpt-4o-mini" }}]
{keys}"""
    return config


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    """A keyed gateway with an admin token, an access log and the cached routes above."""
    tmp = tmp_path_factory.mktemp("cache")
    stack = Stack(tmp, _main_config(tmp), admin_token=ADMIN_TOKEN)
    yield stack
    stack.close()


SMALL_MAX_BYTES, SMALL_MAX_ENTRY = 20000, 6000


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """An open (keyless) gateway without an admin token whose cache holds 20,000 bytes, at
    most 6,000 an entry."""
    tmp = tmp_path_factory.mktemp("cache-small")

    def config(mock_port):
        return f"""
[log]
access_log = "off"
[store]
path = "{tmp / 'tollgate.db'}"
[cache]
max_bytes = {SMALL_MAX_BYTES}
max_entry_bytes = {SMALL_MAX_ENTRY}
{_backends(mock_port)}
[[routes]]
name = "small"
models = ["gpt-4o-mini"]
targets = [{{ backend = "oa" }}]
cache = {{ ttl_seconds = 600 }}
"""
    stack = Stack(tmp, config, server_extra="open = true\n")
    yield stack
    stack.close()


# ---------------------------------------------------------------------------------------------
# 1. Each client API on each kind of backend.

MATRIX = [(f, b) for f in FRONTS for b in MODELS]


@pytest.mark.parametrize("front,backend", MATRIX)
def test_a_miss_is_stored_and_the_same_request_hits(gw, front, backend):
    """A whole reply goes upstream once; the repeat is the stored reply with a fresh id."""
    model, text = MODELS[backend], nonce(f"{front}/{backend}")
    before = gw.upstream()
    miss = gw.call(front, model, text)
    assert gw.upstream() == before + 1
    assert miss.cache == STORED and "age" not in miss.headers
    hit = gw.call(front, model, text)
    assert gw.upstream() == before + 1, "the hit did not go upstream"
    assert hit.cache == HIT and int(hit.headers["age"]) >= 0
    assert hit.text == miss.text and hit.text
    assert hit.usage == miss.usage
    assert hit.id != miss.id
    if front == "responses" and backend != "openai":
        # Translated: the gateway keeps it, so the hit's items are its own.
        ids = [[i["id"] for i in r.body["output"]] for r in (miss, hit)]
        assert not set(ids[0]) & set(ids[1]), ids
    assert without_id(hit.body) == without_id(miss.body), "the stored reply, ids aside"
    assert hit.headers["x-request-id"] != miss.headers["x-request-id"]


@pytest.mark.parametrize("front,backend", MATRIX)
def test_a_stored_reply_is_replayed_as_a_stream(gw, front, backend):
    """After a whole reply is stored, a streamed request for the same body is answered from
    the cache as a well-formed stream in the client's wire format: same text, usage included,
    fresh ids each time.

    Exception (documented): the Responses API passed through to an OpenAI backend stores only
    the client's body from a whole reply, so the first stream goes upstream and stores a
    replayable form; the next stream hits."""
    model, text = MODELS[backend], nonce(f"{front}/{backend}")
    stored = gw.call(front, model, text)
    assert stored.cache == STORED
    before = gw.upstream()
    if front == "responses" and backend == "openai":
        first = gw.call(front, model, text, stream=True)
        assert first.cache == STORED and gw.upstream() == before + 1
        before += 1
    replays = [gw.call(front, model, text, stream=True) for _ in range(2)]
    assert gw.upstream() == before, "replays did not go upstream"
    for r in replays:
        assert r.cache == HIT
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.text == stored.text
        assert r.usage == stored.usage
        assert r.id != stored.id
    assert replays[0].id != replays[1].id, "each replay has its own id"


@pytest.mark.parametrize("front,backend", MATRIX)
def test_a_streamed_miss_is_stored_for_whole_and_streamed_hits(gw, front, backend):
    """A stream that completes is recorded as it passes: the same body asked whole, or
    streamed again, is a hit with the streamed text and usage."""
    model, text = MODELS[backend], nonce(f"{front}/{backend}")
    before = gw.upstream()
    streamed = gw.call(front, model, text, stream=True)
    assert streamed.cache == STORED and gw.upstream() == before + 1
    whole = gw.call(front, model, text)
    again = gw.call(front, model, text, stream=True)
    assert gw.upstream() == before + 1
    assert whole.cache == HIT and again.cache == HIT
    assert whole.text == again.text == streamed.text
    assert whole.usage == again.usage == streamed.usage
    assert len({streamed.id, whole.id, again.id}) == 3


@pytest.mark.parametrize("front,backend", [(f, b) for f in FRONTS for b in ("openai", "anthropic")])
def test_tool_calls_are_replayed(gw, front, backend):
    """A stored reply that calls a tool is replayed with the same call, whole or as a stream."""
    model, text = MODELS[backend], nonce(f"tools {front}/{backend}") + " Weather in Paris?"
    tools = {"tools": TOOLS[front]}
    stored = gw.call(front, model, text, **tools)
    calls = tool_calls(front, stored)
    assert stored.cache == STORED and calls and calls[0][0] == "get_weather", calls
    before = gw.upstream()
    if front == "responses" and backend == "openai":
        # Only a streamed miss stores a replayable form here (see the test above).
        assert gw.call(front, model, text, stream=True, **tools).cache == STORED
        before += 1
    whole = gw.call(front, model, text, **tools)
    streamed = gw.call(front, model, text, stream=True, **tools)
    assert (whole.cache, streamed.cache) == (HIT, HIT)
    assert tool_calls(front, whole) == tool_calls(front, streamed) == calls
    assert gw.upstream() == before


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_responses_hit_on_a_translated_route_is_kept(gw, stream):
    """On a translated route the gateway keeps Responses replies itself (README "Responses
    state on every provider"): a hit's fresh id can be retrieved and continued like any other
    reply's, whether the hit was answered whole or as a stream."""
    model, text = MODELS["anthropic"], nonce("kept")
    first = gw.call("responses", model, text, store=True)
    hit = gw.call("responses", model, text, stream=stream, store=True)
    assert hit.cache == HIT
    client = gw.oai()
    got = client.responses.retrieve(hit.id)
    assert got.id == hit.id and got.output_text == first.text
    nxt = client.responses.create(model=model, previous_response_id=hit.id, input="And then?")
    assert nxt.status == "completed"


def test_embeddings_are_cached(gw):
    """An embeddings reply (no id) is stored and served again as it was."""
    client, text = gw.oai(), nonce("embed")
    before = gw.upstream()
    miss = client.embeddings.with_raw_response.create(model="text-embedding-3-small", input=text)
    hit = client.embeddings.with_raw_response.create(model="text-embedding-3-small", input=text)
    assert miss.headers["cache-status"] == STORED and hit.headers["cache-status"] == HIT
    assert json.loads(hit.text) == json.loads(miss.text)
    assert hit.parse().data[0].embedding == miss.parse().data[0].embedding
    assert gw.upstream() == before + 1


def test_a_replayed_chat_stream_is_framed_like_openai(gw):
    """On the wire a replayed chat stream is `data:` chunks ending with `data: [DONE]`; without
    `stream_options` no usage chunk is sent."""
    text = nonce("raw chat stream")
    assert gw.chat_raw(text).headers["cache-status"] == STORED
    r = gw.chat_raw(text, stream=True)
    assert r.status_code == 200 and r.headers["cache-status"] == HIT
    events = [e for e in r.text.split("\n\n") if e.strip()]
    assert all(e.startswith("data: ") for e in events), r.text
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e[6:]) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert all(c.get("usage") is None for c in chunks), "no usage chunk unless asked"
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")


def test_a_route_without_cache_says_nothing(gw):
    """No `cache-status` on a route that has no `cache` table; every request goes upstream."""
    text = nonce("plain")
    before = gw.upstream()
    for _ in range(2):
        r = gw.chat_raw(text, model="plain-gpt")
        assert r.status_code == 200 and "cache-status" not in r.headers
    assert gw.upstream() == before + 2


# ---------------------------------------------------------------------------------------------
# 2. The key.


def test_key_order_whitespace_and_bookkeeping_fields_do_not_matter(gw):
    """The same request with its keys reordered, other whitespace and `user`, `metadata`,
    `store`, `stream: false`, `service_tier`, `prompt_cache_key` added is a hit; a changed message
    or a changed option is a miss."""
    text = nonce("normalised")
    first = gw.post("/v1/chat/completions",
                    b'{"model":"gpt-4o-mini","temperature":0,"messages":[{"role":"user","content":"'
                    + text.encode() + b'"}]}')
    assert first.status_code == 200 and first.headers["cache-status"] == STORED
    before = gw.upstream()
    same = (b'{\n  "messages" : [ { "content" : "' + text.encode() + b'" ,\n "role":"user" } ],\n'
            b'  "user": "u-42", "metadata": {"trace": "x"}, "store": false, "stream": false,\n'
            b'  "service_tier": "auto", "prompt_cache_key": "k1",\n'
            b'\t"temperature" : 0 , "model" :"gpt-4o-mini"\n}\n')
    hit = gw.post("/v1/chat/completions", same)
    assert hit.status_code == 200 and hit.headers["cache-status"] == HIT
    assert hit.json()["choices"] == first.json()["choices"]
    assert gw.upstream() == before
    for changed in [{"messages": [{"role": "user", "content": text + "!"}], "temperature": 0},
                    {"messages": [{"role": "user", "content": text}], "temperature": 1},
                    {"messages": [{"role": "user", "content": text}], "temperature": 0,
                     "seed": 7}]:
        r = gw.post("/v1/chat/completions", {"model": "gpt-4o-mini", **changed})
        assert r.status_code == 200 and r.headers["cache-status"] == STORED, changed
    assert gw.upstream() == before + 3


def test_a_responses_request_openai_keeps_is_not_cached(gw):
    """On a route passing the Responses API through to OpenAI, a request with `store` on (the
    default) is not cached: a cached reply's id would be unknown upstream. `store: false` is."""
    model, text = MODELS["openai"], nonce("kept-upstream")
    before = gw.upstream()
    for _ in range(2):
        r = gw.post("/v1/responses", {"model": model, "input": text})
        assert r.status_code == 200 and r.headers["cache-status"] == "tollgate; fwd=bypass"
    assert gw.upstream() == before + 2
    assert gw.call("responses", model, text, store=False).cache == STORED
    assert gw.call("responses", model, text, store=False).cache == HIT
    assert gw.upstream() == before + 3


def test_the_same_body_in_another_client_api_is_another_entry(gw):
    """Chat and Responses requests for the same model are apart, as are two routes."""
    text = nonce("apart")
    assert gw.call("chat", MODELS["openai"], text).cache == STORED
    assert gw.call("responses", MODELS["openai"], text).cache == STORED
    assert gw.call("chat", "shared-gpt", text).cache == STORED
    assert gw.call("chat", MODELS["openai"], text).cache == HIT


# ---------------------------------------------------------------------------------------------
# 3. Only complete 200 replies are stored.


@pytest.mark.parametrize("status", [500, 429, 400])
def test_errors_are_not_stored(gw, status):
    """An upstream error reaches the client and is not stored: the same request goes upstream
    again (`fwd=miss`, not stored), and once the upstream is well it is stored."""
    text = nonce(f"error {status}")
    fault = {"x-mock-status": str(status)}
    before = gw.upstream()
    for n in (1, 2):
        r = gw.chat_raw(text, model="once-gpt", headers=fault)
        assert r.status_code == status and r.headers["cache-status"] == MISS
        assert gw.upstream() == before + n
    ok = gw.chat_raw(text, model="once-gpt")
    assert ok.status_code == 200 and ok.headers["cache-status"] == STORED
    assert gw.chat_raw(text, model="once-gpt").headers["cache-status"] == HIT
    assert gw.upstream() == before + 3


def test_a_mock_wide_fault_is_not_stored(gw):
    """The mock's runtime fault (`POST /mock/fault`): every request fails; nothing is stored."""
    text = nonce("fault")
    gw.http.post(f"{gw.mock}/mock/fault?status=503")
    try:
        before = gw.upstream()
        r = gw.chat_raw(text, model="once-gpt")
        assert r.status_code == 503 and r.headers["cache-status"] == MISS
    finally:
        gw.http.post(f"{gw.mock}/mock/fault?status=0")
    ok = gw.chat_raw(text, model="once-gpt")
    assert ok.status_code == 200 and ok.headers["cache-status"] == STORED
    assert gw.upstream() == before + 2


@pytest.mark.parametrize("fault", [{"x-mock-drop-after": "3"}, {"x-mock-stream-error-after": "3"}])
@pytest.mark.parametrize("front,backend", [("chat", "openai"), ("messages", "anthropic"),
                                           ("chat", "anthropic")])
def test_a_broken_stream_is_not_stored(gw, front, backend, fault):
    """A stream cut short (connection dropped, or an error event mid-stream) is not stored: the
    same request goes upstream again."""
    model, text = MODELS[backend], nonce(f"broken {front}/{backend}")
    before = gw.upstream()
    with pytest.raises((openai.APIError, anthropic.APIError)):
        gw.call(front, model, text, stream=True, headers=fault)
    assert gw.upstream() == before + 1
    again = gw.call(front, model, text)
    assert again.cache == STORED and gw.upstream() == before + 2


# ---------------------------------------------------------------------------------------------
# 4. What a request asks of the cache; TTLs.


def test_no_store_neither_looks_up_nor_stores(gw):
    """`Cache-Control: no-store` goes upstream even when an entry exists (`fwd=bypass`), and
    what it fetches is not stored."""
    stored, fresh = nonce("no-store stored"), nonce("no-store fresh")
    assert gw.chat_raw(stored).headers["cache-status"] == STORED
    before = gw.upstream()
    r = gw.chat_raw(stored, headers={"cache-control": "no-store"})
    assert r.status_code == 200 and r.headers["cache-status"] == "tollgate; fwd=bypass"
    assert gw.upstream() == before + 1, "not looked up"
    assert gw.chat_raw(stored).headers["cache-status"] == HIT, "the entry is still there"
    r = gw.chat_raw(fresh, headers={"cache-control": "max-age=0, No-Store"})
    assert r.headers["cache-status"] == "tollgate; fwd=bypass"
    assert gw.chat_raw(fresh).headers["cache-status"] == STORED, "the bypass did not store"
    assert gw.upstream() == before + 3


def test_replies_beyond_the_pivot_pass_the_cache_by(gw):
    """A request for several choices or log probabilities is not cached (a stream replayed from
    the pivot would lack them): `fwd=bypass`, upstream every time."""
    before = gw.upstream()
    for extra in [{"n": 2}, {"logprobs": True}, {"top_logprobs": 2, "logprobs": True}]:
        text = nonce("beyond")
        for _ in range(2):
            r = gw.chat_raw(text, **extra)
            assert r.status_code == 200, r.text
            assert r.headers["cache-status"] == "tollgate; fwd=bypass", extra
    assert gw.upstream() == before + 6


def test_no_cache_fetches_fresh_and_stores_again(gw):
    """`Cache-Control: no-cache` goes upstream past a stored entry and stores its reply in its
    place: a plain request then hits, and keeps hitting after the first entry's (shorter) TTL
    would have run out."""
    text, sibling = nonce("no-cache"), nonce("no-cache sibling")
    one_second = {"x-tollgate-cache-ttl": "1"}
    assert gw.chat_raw(text, headers=one_second).headers["cache-status"] == STORED
    assert gw.chat_raw(sibling, headers=one_second).headers["cache-status"] == STORED
    before = gw.upstream()
    r = gw.chat_raw(text, headers={"cache-control": "no-cache"})
    assert r.status_code == 200 and r.headers["cache-status"] == "tollgate; fwd=request; stored"
    assert gw.upstream() == before + 1
    hit = gw.chat_raw(text)
    assert hit.headers["cache-status"] == HIT and hit.json()["choices"] == r.json()["choices"]
    # The first entry had 1 s (as its sibling, stored with it); the refreshed one the route's 600 s.
    poll(lambda: gw.chat_raw(sibling).headers["cache-status"] == STORED, "the sibling to expire")
    assert gw.chat_raw(text).headers["cache-status"] == HIT
    assert gw.upstream() == before + 2


def test_ttl_header_shortens_an_entry(gw):
    """`x-tollgate-cache-ttl: 1` stores the entry for one second: it hits at once, then misses
    again (polled, with a deadline)."""
    text = nonce("ttl 1")
    r = gw.chat_raw(text, headers={"x-tollgate-cache-ttl": "1"})
    assert r.headers["cache-status"] == STORED
    assert gw.chat_raw(text).headers["cache-status"] == HIT
    t0 = time.monotonic()
    poll(lambda: gw.chat_raw(text).headers["cache-status"] == STORED, "the entry to expire",
         timeout=5)
    assert time.monotonic() - t0 < 3


def test_ttl_header_zero_does_not_store(gw):
    """`x-tollgate-cache-ttl: 0` keeps nothing, and the reply does not claim it was stored."""
    text = nonce("ttl 0")
    r = gw.chat_raw(text, headers={"x-tollgate-cache-ttl": "0"})
    assert r.status_code == 200
    before = gw.upstream()
    assert gw.chat_raw(text).headers["cache-status"] == STORED, "nothing was stored"
    assert gw.upstream() == before + 1
    assert r.headers["cache-status"] == MISS, "a reply kept for 0 s is not `stored`"


def test_a_routes_own_ttl_expires(gw):
    """A route with `ttl_seconds = 1`: a hit at once, a miss once the second has passed."""
    text = nonce("short route")
    assert gw.chat_raw(text, model="short-ttl").headers["cache-status"] == STORED
    assert gw.chat_raw(text, model="short-ttl").headers["cache-status"] == HIT
    poll(lambda: gw.chat_raw(text, model="short-ttl").headers["cache-status"] == STORED,
         "the route's TTL to run out", timeout=5)


# ---------------------------------------------------------------------------------------------
# 5. Scope.


def test_keys_do_not_share_entries_by_default(gw):
    """Two client keys asking the same thing each go upstream once, then each hit their own."""
    text = nonce("per key")
    before = gw.upstream()
    assert gw.call("chat", MODELS["openai"], text, key=A).cache == STORED
    assert gw.call("chat", MODELS["openai"], text, key=B).cache == STORED
    assert gw.upstream() == before + 2
    assert gw.call("chat", MODELS["openai"], text, key=A).cache == HIT
    assert gw.call("chat", MODELS["openai"], text, key=B).cache == HIT
    assert gw.upstream() == before + 2


def test_a_global_route_shares_entries_between_keys(gw):
    """`scope = "global"`: what one key stored, another key hits."""
    text = nonce("global")
    before = gw.upstream()
    a = gw.call("chat", "shared-gpt", text, key=A)
    b = gw.call("chat", "shared-gpt", text, key=B)
    assert (a.cache, b.cache) == (STORED, HIT)
    assert b.text == a.text and gw.upstream() == before + 1


# ---------------------------------------------------------------------------------------------
# 6. Coalescing.


def _concurrently(n, fn):
    barrier = threading.Barrier(n)

    def one(i):
        barrier.wait()
        return fn(i)

    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_identical_requests_in_flight_make_one_upstream_call(gw):
    """20 identical requests at once while the first is slow upstream: one upstream call, 20
    identical replies; the other 19 waited for it (coalesced) or came after it stored."""
    text = nonce("coalesce")
    m0 = gw.metrics()
    before = gw.upstream()
    slow = {"x-mock-delay-ms": "1500"}
    replies = _concurrently(20, lambda i: gw.chat_raw(text, headers=slow))
    assert gw.upstream() == before + 1
    assert all(r.status_code == 200 for r in replies)
    assert len({json.dumps(r.json()["choices"]) for r in replies}) == 1
    assert len({r.json()["id"] for r in replies}) == 20, "fresh ids"
    statuses = sorted(r.headers["cache-status"] for r in replies)
    assert statuses == sorted([STORED] + [HIT] * 19)
    m1 = gw.metrics()

    def delta(name, **labels):
        return gw.metric(name, m1, **labels) - gw.metric(name, m0, **labels)
    assert delta("tollgate_cache_lookups_total", route="c-openai", result="hit") == 19
    assert delta("tollgate_cache_lookups_total", route="c-openai", result="miss") == 1
    coalesced = delta("tollgate_cache_coalesced_total", route="c-openai", result="hit")
    assert coalesced >= 10, f"only {coalesced} of 19 waited"
    assert delta("tollgate_cache_coalesced_total", route="c-openai", result="miss") == 0


@pytest.mark.parametrize("front,backend", [("chat", "openai"), ("messages", "anthropic"),
                                           ("responses", "bedrock")])
def test_identical_streams_in_flight_make_one_upstream_call(gw, front, backend):
    """10 identical streamed requests at once: one upstream stream; the others are replayed
    from what it recorded, each a whole stream with the same text."""
    model, text = MODELS[backend], nonce(f"coalesce stream {front}")
    before = gw.upstream()
    slow = {"x-mock-delay-ms": "1000"}
    replies = _concurrently(10, lambda i: gw.call(front, model, text, stream=True, headers=slow))
    assert gw.upstream() == before + 1
    assert sorted(r.cache for r in replies) == sorted([STORED] + [HIT] * 9)
    assert len({r.text for r in replies}) == 1 and replies[0].text
    assert len({r.id for r in replies}) == 10


def test_waiters_on_a_failed_request_go_upstream_themselves(gw):
    """When the request they wait on fails, identical waiters are not handed its error: each
    goes upstream itself (coalesced `miss`)."""
    text = nonce("coalesce fail")
    m0 = gw.metrics()
    before = gw.upstream()
    fault = {"x-mock-delay-ms": "1000", "x-mock-status": "500"}
    replies = _concurrently(5, lambda i: gw.chat_raw(text, model="once-gpt", headers=fault))
    assert [r.status_code for r in replies] == [500] * 5
    assert gw.upstream() == before + 5
    m1 = gw.metrics()
    waited = (gw.metric("tollgate_cache_coalesced_total", m1, route="c-once", result="miss")
              - gw.metric("tollgate_cache_coalesced_total", m0, route="c-once", result="miss"))
    assert 1 <= waited <= 4
    assert gw.chat_raw(text, model="once-gpt").headers["cache-status"] == STORED


# ---------------------------------------------------------------------------------------------
# 7. Bounds.


def test_eviction_keeps_the_cache_within_max_bytes(small):
    """Many distinct replies through a 20,000-byte cache: it stays within bounds and evicts,
    and what it no longer holds goes upstream again. (Which entries go is pingora-lru's choice:
    least recently used within a shard, the longer of two random shards; so no test of order.)"""
    texts = [nonce(f"evict {i}") for i in range(40)]
    sizes = []
    for t in texts:
        r = small.chat_raw(t, key=None)
        assert r.status_code == 200 and r.headers["cache-status"] == STORED
        sizes.append(len(r.content))
        assert small.metric("tollgate_cache_bytes") <= SMALL_MAX_BYTES
    m = small.metrics()
    # Each entry holds at least its body: at most this many fit.
    fit = SMALL_MAX_BYTES // min(sizes)
    assert fit < 40
    assert small.metric("tollgate_cache_evictions_total", m) >= 40 - fit
    held = small.metric("tollgate_cache_bytes", m)
    assert SMALL_MAX_BYTES - 3 * max(sizes) - 1024 < held <= SMALL_MAX_BYTES
    assert small.metric("tollgate_cache_stores_total", m, route="small", result="stored") == 40
    before = small.upstream()
    statuses = [small.chat_raw(t, key=None).headers["cache-status"] for t in reversed(texts)]
    assert set(statuses) <= {HIT, STORED}, statuses
    misses = statuses.count(STORED)
    assert misses >= 40 - fit, f"{40 - misses} hits from a cache that holds at most {fit}"
    assert small.upstream() == before + misses, "every miss went upstream, no hit did"


def test_a_reply_over_max_entry_bytes_is_served_not_stored(small):
    """A reply larger than `max_entry_bytes` reaches the client whole and is not stored."""
    text = nonce("too large")
    big = {"x-mock-words": "2000"}
    m0 = small.metrics()
    before = small.upstream()
    r = small.chat_raw(text, key=None, headers=big)
    assert r.status_code == 200 and len(r.content) > SMALL_MAX_ENTRY
    assert r.json()["usage"]["completion_tokens"] == 2000
    again = small.chat_raw(text, key=None, headers=big)
    assert again.status_code == 200 and again.headers["cache-status"] != HIT
    assert small.upstream() == before + 2
    too_large = (small.metric("tollgate_cache_stores_total", route="small", result="too_large")
                 - small.metric("tollgate_cache_stores_total", m0, route="small", result="too_large"))
    assert too_large == 2


# ---------------------------------------------------------------------------------------------
# 8. Accounting.


def _access_line(gw, request_id):
    def find():
        path = gw.tmp / "access.log"
        if not path.exists():
            return None
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            if rec["request_id"] == request_id:
                return rec
        return None
    return poll(find, f"the access-log line of {request_id}")


def _ledger_row(gw, request_id):
    def find():
        r = gw.admin_get("/usage?limit=10000")
        assert r.status_code == 200, r.text
        return next((row for row in r.json() if row["request_id"] == request_id), None)
    return poll(find, f"the ledger row of {request_id}")


def test_a_hit_is_logged_and_billed_as_the_cache_at_no_cost(gw):
    """The access log marks a hit `"cache":"hit"`, `"backend":"cache"`, with the reply's tokens
    and `cost_usd` 0; the miss before it is the backend's, priced. The ledger agrees."""
    text = nonce("accounting")
    miss = gw.call("chat", MODELS["openai"], text)
    hit = gw.call("chat", MODELS["openai"], text)
    assert (miss.cache, hit.cache) == (STORED, HIT)
    tokens = {"input_tokens": hit.usage[0], "output_tokens": hit.usage[1],
              "total_tokens": sum(hit.usage)}
    m = _access_line(gw, miss.headers["x-request-id"])
    assert m["cache"] == "miss" and m["backend"] == "oa" and m["route"] == "c-openai"
    assert m["cost_usd"] > 0
    h = _access_line(gw, hit.headers["x-request-id"])
    assert h["cache"] == "hit" and h["backend"] == "cache" and h["route"] == "c-openai"
    assert h["status"] == 200 and h["key"] == "team-a"
    assert {k: h[k] for k in tokens} == tokens
    assert h["cost_usd"] == 0
    row = _ledger_row(gw, hit.headers["x-request-id"])
    assert row["backend"] == "cache" and row["cost_usd"] == 0
    assert {k: row[k] for k in tokens} == tokens
    assert _ledger_row(gw, miss.headers["x-request-id"])["backend"] == "oa"
    grouped = gw.admin_get("/usage?group_by=backend").json()
    cache = next(g for g in grouped if g["backend"] == "cache")
    assert cache["requests"] >= 1 and cache["total_tokens"] > 0 and cache["cost_usd"] == 0


def test_metrics_count_hits_and_what_they_saved(gw):
    """A hit counts in `tollgate_requests_total{backend="cache"}`, as a lookup `hit`, and adds
    its tokens and its first cost to the saved counters; the miss counts a store."""
    text = nonce("metrics")
    m0 = gw.metrics()
    miss = gw.call("chat", MODELS["openai"], text)
    hits = [gw.call("chat", MODELS["openai"], text) for _ in range(3)]
    m1 = gw.metrics()

    def delta(name, **labels):
        return gw.metric(name, m1, **labels) - gw.metric(name, m0, **labels)
    assert delta("tollgate_cache_lookups_total", route="c-openai", result="miss") == 1
    assert delta("tollgate_cache_lookups_total", route="c-openai", result="hit") == 3
    assert delta("tollgate_cache_stores_total", route="c-openai", result="stored") == 1
    assert delta("tollgate_requests_total", backend="cache", status="200") == 3
    assert delta("tollgate_requests_total", backend="oa", status="200") == 1
    assert delta("tollgate_cache_saved_tokens_total", route="c-openai") == 3 * sum(miss.usage)
    # gpt-4o-mini at $1 / $2 per 1M tokens.
    cost = (miss.usage[0] * 1.0 + miss.usage[1] * 2.0) / 1e6
    assert delta("tollgate_cache_saved_cost_usd_total", route="c-openai") == pytest.approx(3 * cost)
    assert all(h.cache == HIT for h in hits)
    assert gw.metric("tollgate_cache_bytes", m1) > 0


def test_a_hit_does_not_spend_the_token_budget(gw):
    """Key `budget` may use 300 tokens a day. A request reserves its estimate at admission
    (prompt + max_tokens: 114 here) and is settled with what it used (116). After one real
    generation, hits are still admitted (116 + 114 <= 300) and settle at 0, so any number of them
    leaves room for one more real generation; after that the key is over (232 + 114 > 300), for
    hits too."""
    budget = KEYS["budget"]
    # 400 characters: 100 tokens by the gateway's estimate (not an OpenAI model: chars / 4) and
    # by the mock's count; max_tokens caps the reply at 10.
    first, second, third = (f"{nonce(t):<400}" for t in ("budget 1", "budget 2", "budget 3"))

    def ask(text):
        return gw.chat_raw(text, model="budget-model", key=budget, max_tokens=10)
    r = ask(first)
    assert r.status_code == 200 and r.headers["cache-status"] == STORED
    used = r.json()["usage"]["total_tokens"]
    assert 2 * used + 114 > BUDGET_TOKENS >= used + 114, f"the test's arithmetic: used {used}"
    for _ in range(5):
        h = ask(first)
        assert h.status_code == 200 and h.headers["cache-status"] == HIT, h.text
    r = ask(second)
    assert r.status_code == 200, f"hits spent the budget: {r.status_code} {r.text}"
    assert r.headers["cache-status"] == STORED
    r = ask(third)
    assert r.status_code == 429 and r.json()["error"]["code"] == "insufficient_quota", r.text
    # Admission comes before the lookup (README "Accounting"): over budget, even a reply the
    # cache holds is refused.
    r = ask(first)
    assert r.status_code == 429 and "cache-status" not in r.headers, r.headers


# ---------------------------------------------------------------------------------------------
# 9. Admin.


def test_admin_cache_needs_the_token(gw, small):
    """`/cache` answers 401 without the admin token, and 404 where no token is configured."""
    for method in ("GET", "DELETE"):
        r = gw.admin_get("/cache", token=False, method=method)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert small.admin_get("/cache", method=method).status_code == 404


def test_admin_cache_reports_and_purges_by_route_and_all(gw):
    """`GET /cache` reports bytes and evictions; `DELETE /cache?route=NAME` empties one route
    (others keep their entries); `DELETE /cache` empties all; an unknown route is a 404."""
    openai_text, claude_text = nonce("purge openai"), nonce("purge claude")
    for model, text in [(MODELS["openai"], openai_text), (MODELS["anthropic"], claude_text)]:
        assert gw.call("chat", model, text).cache == STORED
    got = gw.admin_get("/cache")
    assert got.status_code == 200
    doc = got.json()
    assert doc["purged"] is None and doc["route"] is None
    assert doc["bytes"] > 0 and doc["evicted_total"] >= 0

    assert gw.admin_get("/cache?route=nope", method="DELETE").status_code == 404
    one = gw.admin_get("/cache?route=c-openai", method="DELETE")
    assert one.status_code == 200
    doc = one.json()
    assert doc["route"] == "c-openai" and doc["purged"] >= 1
    assert gw.call("chat", MODELS["openai"], openai_text).cache == STORED, "purged"
    assert gw.call("chat", MODELS["anthropic"], claude_text).cache == HIT, "another route kept"

    every = gw.admin_get("/cache", method="DELETE")
    assert every.status_code == 200 and every.json()["purged"] >= 2
    assert gw.admin_get("/cache").json()["bytes"] == 0
    assert gw.metric("tollgate_cache_bytes") == 0
    assert gw.call("chat", MODELS["anthropic"], claude_text).cache == STORED, "purged"
