"""Start one mock provider and one Tollgate gateway for the whole test session.

The mock requires the backend key (``--expect-key sk-upstream``: as a Bearer token on
OpenAI paths, as ``x-api-key`` on Anthropic's), so every successful request also proves
the gateway replaced the client's key. ``gpt-4o-mini`` is served by the mock's OpenAI API,
``claude-sonnet-4-5`` by its Anthropic API.
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
    config = tmp / "tollgate.toml"
    config.write_text(f"""
[server]
listen = ["127.0.0.1:{gw_port}"]
admin_listen = "127.0.0.1:{admin_port}"
[log]
access_log = "off"
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
[[routes]]
models = ["gpt-4o-mini", "gpt-4o-*"]
targets = [{{ backend = "mock" }}]
[[routes]]
models = ["renamed"]
targets = [{{ backend = "mock", model = "llama3" }}]
[[routes]]
models = ["text-embedding-3-small"]
targets = [{{ backend = "mock" }}]
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
             "--expect-key", UPSTREAM_KEY],
            stdout=mock_log, stderr=subprocess.STDOUT)
        procs.append(mock)
        wait_until(lambda: accepts(mock_port), mock, "mock", mock_log)

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
