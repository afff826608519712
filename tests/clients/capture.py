"""A recording reverse proxy between the clients and the gateway.

    capture.py LISTEN_PORT UPSTREAM_PORT OUT_DIR

Every request is forwarded to 127.0.0.1:UPSTREAM_PORT and its response streamed back as it
arrives. Each exchange is written to OUT_DIR/<case>/NNN.json: method, path, the request
headers (secrets masked), the request body (parsed JSON when it is JSON), the response status
and the first 4 kB of the response body. `POST /_capture/case?name=X` starts case X.
"""

import http.client
import http.server
import json
import os
import sys
import threading

LISTEN, UPSTREAM, OUT = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
SECRET = {"authorization", "x-api-key", "api-key", "x-goog-api-key"}
HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host",
       "proxy-connection", "upgrade", "te", "trailer"}
lock = threading.Lock()
state = {"case": "none", "n": 0}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def body(self):
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def handle_any(self):
        body = self.body()
        if self.path.startswith("/_capture/case"):
            with lock:
                state["case"] = self.path.split("name=", 1)[1]
                state["n"] = 0
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        with lock:
            case, n = state["case"], state["n"]
            state["n"] += 1
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        conn = http.client.HTTPConnection("127.0.0.1", UPSTREAM, timeout=120)
        status, head = 502, b""
        try:
            conn.request(self.command, self.path, body=body if body or self.command in
                         ("POST", "PUT", "PATCH") else None, headers=headers)
            resp = conn.getresponse()
            status = resp.status
            self.send_response(resp.status, resp.reason)
            for k, v in resp.getheaders():
                if k.lower() not in HOP:
                    self.send_header(k, v)
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            while True:
                chunk = resp.read1(65536)
                if not chunk:
                    break
                if len(head) < 4096:
                    head += chunk[: 4096 - len(head)]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (OSError, http.client.HTTPException) as e:
            head = head or f"proxy: {e}".encode()
            self.close_connection = True
        finally:
            conn.close()
            self.record(case, n, headers, body, status, head)

    def record(self, case, n, headers, body, status, head):
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = body.decode(errors="replace")
        masked = {k.lower(): ("<redacted>" if k.lower() in SECRET else v)
                  for k, v in headers.items()}
        d = os.path.join(OUT, case)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"{n:03d}.json"), "w") as f:
            json.dump({"method": self.command, "path": self.path, "headers": masked,
                       "body": parsed, "status": status,
                       "response": head.decode(errors="replace")}, f, indent=2)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any


http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer(("127.0.0.1", LISTEN), Handler).serve_forever()
