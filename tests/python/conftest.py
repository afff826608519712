"""Start one mock provider and one Tollgate gateway for the whole test session.

The mock requires the backend key (``--expect-key sk-upstream``: as a Bearer token on
OpenAI paths, as ``x-api-key`` on Anthropic's, as ``x-goog-api-key`` on Gemini's), verifies
Bedrock's SigV4 signatures and Vertex AI's OAuth tokens (issued by its token endpoint for
JWTs signed with the test service account), so every successful request also proves the
gateway authenticated upstream as each provider expects. ``gpt-4o-mini`` is served by the
mock's OpenAI API, ``claude-sonnet-4-5`` by its Anthropic API; the cloud models are in
``CLOUD`` below.
"""

import hashlib
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("TOLLGATE_BIN", str(REPO / "target" / "debug" / "tollgate"))
CLIENT_KEY = "sk-client-team-a"
UPSTREAM_KEY = "sk-upstream"
AWS_KEY_ID, AWS_SECRET = "AKIDTOLLGATETEST", "tollgate/test/secret"
SERVICE_ACCOUNT = REPO / "tests" / "fixtures" / "vertex" / "service-account.json"
PUBLIC_KEY = REPO / "tests" / "fixtures" / "vertex" / "public.pem"
DEADLINE_S = 20.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(ready, proc, what, log):
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if ready():
            return
        time.sleep(0.05)
    log.seek(0)
    pytest.exit(f"{what} did not start (exit code {proc.poll()}):\n{log.read().decode(errors='replace')}")


def accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def healthy(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=0.5) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def gateway(tmp_path_factory):
    """Yield ``(base_url, client_key)`` of a running gateway in front of a mock."""
    tmp = tmp_path_factory.mktemp("tollgate")
    mock_port, gw_port, admin_port = free_port(), free_port(), free_port()
    down_port = free_port()
    config = tmp / "tollgate.toml"
    config.write_text(f"""
[server]
listen = ["127.0.0.1:{gw_port}"]
admin_listen = "127.0.0.1:{admin_port}"
[log]
access_log = "off"
[store]
path = "{tmp / 'tollgate.db'}"
[[limits]]
scope = "model"
match = "over-rate"
requests_per_minute = 0
[[limits]]
scope = "model"
match = "over-quota"
tokens_per_day = 1
[[routes]]
models = ["over-rate", "over-quota"]
targets = [{{ backend = "mock" }}]
[[backends]]
name = "mock"
provider = "openai"
url = "http://127.0.0.1:{mock_port}"
api_key = "{UPSTREAM_KEY}"
[[backends]]
name = "claude"
provider = "anthropic"
url = "http://127.0.0.1:{mock_port}"
api_key = "{UPSTREAM_KEY}"
[[routes]]
models = ["claude-sonnet-4-5"]
targets = [{{ backend = "claude" }}]
[[backends]]
name = "down"
provider = "openai"
url = "http://127.0.0.1:{down_port}"
api_key = "{UPSTREAM_KEY}"
eject_after_failures = 0
[[routes]]
models = ["failover-gpt"]
targets = [{{ backend = "down" }}, {{ backend = "claude", model = "claude-sonnet-4-5", priority = 1 }}]
[[routes]]
models = ["gpt-4o-mini", "gpt-4o-*"]
targets = [{{ backend = "mock" }}]
[[routes]]
models = ["renamed"]
targets = [{{ backend = "mock", model = "llama3" }}]
[[routes]]
models = ["text-embedding-3-small"]
targets = [{{ backend = "mock" }}]
[[backends]]
name = "bedrock"
provider = "bedrock"
url = "http://127.0.0.1:{mock_port}"
region = "us-east-1"
aws_access_key_id = "{AWS_KEY_ID}"
aws_secret_access_key = "{AWS_SECRET}"
[[backends]]
name = "gemini"
provider = "gemini"
url = "http://127.0.0.1:{mock_port}"
api_key = "{UPSTREAM_KEY}"
[[backends]]
name = "vertex"
provider = "vertex"
url = "http://127.0.0.1:{mock_port}"
location = "us-central1"
service_account_file = "{SERVICE_ACCOUNT}"
token_uri = "http://127.0.0.1:{mock_port}/token"
[[backends]]
name = "vertex-claude"
provider = "vertex-anthropic"
url = "http://127.0.0.1:{mock_port}"
location = "us-east5"
service_account_file = "{SERVICE_ACCOUNT}"
token_uri = "http://127.0.0.1:{mock_port}/token"
[[backends]]
name = "local-vllm"
provider = "vllm"
url = "http://127.0.0.1:{mock_port}/v1"
api_key = "{UPSTREAM_KEY}"
[[routes]]
models = ["local-llama"]
targets = [{{ backend = "local-vllm" }}]
[[routes]]
models = ["bedrock-claude"]
targets = [{{ backend = "bedrock", model = "anthropic.claude-3-haiku-20240307-v1:0" }}]
[[routes]]
models = ["gemini-2.0-flash"]
targets = [{{ backend = "gemini" }}]
[[routes]]
models = ["vertex-gemini"]
targets = [{{ backend = "vertex", model = "gemini-2.0-flash" }}]
[[routes]]
models = ["vertex-claude"]
targets = [{{ backend = "vertex-claude", model = "claude-sonnet-4-5@20250929" }}]
[[routes]]
models = ["titan-embed"]
targets = [{{ backend = "bedrock", model = "amazon.titan-embed-text-v2:0" }}]
[[routes]]
models = ["cohere-embed"]
targets = [{{ backend = "bedrock", model = "cohere.embed-english-v3" }}]
[[routes]]
models = ["gemini-embed"]
targets = [{{ backend = "gemini", model = "text-embedding-004" }}]
[[routes]]
models = ["vertex-embed"]
targets = [{{ backend = "vertex", model = "text-embedding-005" }}]
[[keys]]
name = "team-a"
sha256 = "{hashlib.sha256(CLIENT_KEY.encode()).hexdigest()}"
""")
    procs, logs = [], []
    try:
        mock_log = open(tmp / "mock.log", "w+b")
        logs.append(mock_log)
        mock = subprocess.Popen(
            [BIN, "mock", "--listen", f"127.0.0.1:{mock_port}", "--name", "mock",
             "--expect-key", UPSTREAM_KEY, "--aws-access-key-id", AWS_KEY_ID,
             "--aws-secret-access-key", AWS_SECRET, "--vertex-public-key", str(PUBLIC_KEY),
             # A fault injected into one request must not cool its backend down for the next
             # test: error replies say `retry-after: 0` (cool-downs: tests/retry.rs).
             "--retry-after", "0"],
            stdout=mock_log, stderr=subprocess.STDOUT)
        procs.append(mock)
        wait_until(lambda: accepts(mock_port), mock, "mock", mock_log)
        # An OpenAI backend that answers every request 503 (cross-provider failover).
        down = subprocess.Popen(
            [BIN, "mock", "--listen", f"127.0.0.1:{down_port}", "--name", "down", "--status", "503"],
            stdout=mock_log, stderr=subprocess.STDOUT)
        procs.append(down)
        wait_until(lambda: accepts(down_port), down, "503 mock", mock_log)

        gw_log = open(tmp / "gateway.log", "w+b")
        logs.append(gw_log)
        gw = subprocess.Popen([BIN, "run", "-c", str(config)],
                              stdout=subprocess.DEVNULL, stderr=gw_log)
        procs.append(gw)
        wait_until(lambda: healthy(admin_port) and accepts(gw_port), gw, "gateway", gw_log)

        yield f"http://127.0.0.1:{gw_port}", CLIENT_KEY
    finally:
        for p in procs:
            p.kill()
            p.wait()
        for f in logs:
            f.close()
