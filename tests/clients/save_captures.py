"""Saves one real request sequence per client and API from a harness run's captures.

    save_captures.py CAPTURED_DIR SCRATCH_DIR OUT_DIR

Writes OUT_DIR/<client>-<api>.json: the client's requests in order (method, path, headers
with secrets masked, body), from the case that reached the provider of the same API (so the
tool loop completed and the second request carries the tool result). Strings longer than
300 characters are cut (every field and structure kept); the scratch dir becomes `$SCRATCH`.
"""

import json
import os
import sys

CAPTURED, SCRATCH, OUT = sys.argv[1:4]
# (file name, harness case)
CASES = [
    ("codex-responses", "codex-openai"),
    ("claude-code-messages", "claude-sonnet-4-5-anthropic"),
    ("claude-code-opus-4-6-messages", "claude-opus-4-6-anthropic"),
    ("aisdk-chat", "aisdk-openai-openai"),
    ("aisdk-messages", "aisdk-anthropic-anthropic"),
    ("aisdk-responses", "aisdk-responses-anthropic"),
    ("openai-agents-responses", "agents-openai"),
]
LIMIT = 300
DROP_HEADERS = {"content-length", "host", "accept-encoding", "connection"}


def cut(v):
    if isinstance(v, str):
        v = v.replace(SCRATCH, "$SCRATCH")
        if len(v) > LIMIT:
            return v[:LIMIT] + f"...[{len(v) - LIMIT} more chars]"
        return v
    if isinstance(v, list):
        return [cut(x) for x in v]
    if isinstance(v, dict):
        return {k: cut(x) for k, x in v.items()}
    return v


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, case in CASES:
        d = os.path.join(CAPTURED, case)
        if not os.path.isdir(d):
            print(f"save_captures: no capture for {case}", file=sys.stderr)
            continue
        reqs = []
        for f in sorted(os.listdir(d)):
            with open(os.path.join(d, f)) as fh:
                e = json.load(fh)
            if e["method"] != "POST":
                continue
            headers = {k: v for k, v in e["headers"].items() if k not in DROP_HEADERS}
            reqs.append(cut({"method": e["method"], "path": e["path"], "headers": headers,
                             "status": e["status"], "body": e["body"]}))
        with open(os.path.join(OUT, f"{name}.json"), "w") as fh:
            json.dump({"client": name, "case": case, "requests": reqs}, fh, indent=2)
            fh.write("\n")
        print(f"save_captures: {name}.json ({len(reqs)} requests)", file=sys.stderr)


main()
