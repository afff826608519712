"""Verdict of one client case from its captured exchanges (see capture.py).

    judge.py CASE_DIR TOKEN EXIT_CODE LOG     prints `PASS name` or `FAIL name: reason`

PASS: the client exited 0 and a request carrying TOKEN (the tool's output, which only the
tool can produce) was answered 200. Otherwise the reason is the first error the gateway
answered (status, path and body), else what is missing, else the client's last log lines.
"""

import json
import os
import sys


def exchanges(d):
    if not os.path.isdir(d):
        return []
    out = []
    for f in sorted(os.listdir(d)):
        with open(os.path.join(d, f)) as fh:
            out.append(json.load(fh))
    return out


def one_line(s, n=300):
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[:n] + "..."


def main():
    d, token, rc, log = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    name = os.path.basename(d)
    ex = exchanges(d)
    carried = [e for e in ex if token in json.dumps(e.get("body"))]
    answered = [e for e in carried if e["status"] == 200]
    errors = [e for e in ex if e["status"] >= 400 and e["method"] == "POST"]
    if rc == 0 and answered:
        print(f"PASS {name} ({len(ex)} requests)")
        return
    if errors:
        e = errors[0]
        reason = f"{e['status']} on {e['method']} {e['path']}: {one_line(e['response'])}"
    elif rc == 124:
        reason = "timed out"
    elif not ex:
        reason = "no request reached the gateway"
    elif not carried:
        reason = f"the tool's output was never sent back ({len(ex)} requests)"
    else:
        reason = f"exit {rc}"
    try:
        with open(log, errors="replace") as fh:
            tail = fh.read()[-400:]
    except OSError:
        tail = ""
    if rc not in (0, 124) and tail.strip():
        reason += f" | exit {rc}, client said: {one_line(tail, 240)}"
    print(f"FAIL {name}: {reason}")


if __name__ == "__main__":
    main()
