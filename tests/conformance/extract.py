#!/usr/bin/env python3
"""Regenerate ``openai-openapi-excerpt.json`` from a checkout of OpenAI's published OpenAPI
document (https://github.com/openai/openai-openapi).

    python3 tests/conformance/extract.py /path/to/openai-openapi [REV]

The path is a clone (work tree or bare git directory); REV (default ``HEAD``) is read with
``git show REV:openapi.json``, so the excerpt names the exact commit it came from. Only the
component schemas the conformance suite validates against are kept (``ROOTS`` and the
Responses stream events in ``STREAM_EVENTS``), with every schema they ``$ref``, transitively,
verbatim but for documentation-only keys (descriptions, examples, ``x-oaiMeta``). The
conversion to strict JSON Schema happens at test time (tests/python/test_conformance.py), so
this file stays the spec's own text.
"""

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "openai-openapi-excerpt.json"
REPOSITORY = "https://github.com/openai/openai-openapi"
SPEC_PATH = "openapi.json"  # the same document as openapi.yaml, in JSON

ROOTS = [
    "CreateChatCompletionResponse",
    "CreateChatCompletionStreamResponse",
    "Response",
    "ErrorResponse",
    "Error",
    "ResponseErrorEvent",
    "ListModelsResponse",
    "Model",
]

# The ResponseStreamEvent variants the gateway (and the mock's passthrough) can emit, by
# their `type`; each maps to the variant's schema through ResponseStreamEvent's anyOf.
STREAM_EVENTS = [
    "response.created", "response.in_progress", "response.completed", "response.failed",
    "response.incomplete", "response.output_item.added", "response.output_item.done",
    "response.content_part.added", "response.content_part.done",
    "response.output_text.delta", "response.output_text.done",
    "response.refusal.delta", "response.refusal.done",
    "response.function_call_arguments.delta", "response.function_call_arguments.done",
    "response.reasoning_summary_part.added", "response.reasoning_summary_part.done",
    "response.reasoning_summary_text.delta", "response.reasoning_summary_text.done",
    "response.reasoning_text.delta", "response.reasoning_text.done",
    "error",
]

DOC_KEYS = {"description", "example", "examples", "x-oaiMeta", "title"}


def strip_docs(node, in_properties=False):
    """Drop documentation keys (not under `properties`, where they would be field names)."""
    if isinstance(node, dict):
        return {k: strip_docs(v, k == "properties") for k, v in node.items()
                if in_properties or k not in DOC_KEYS}
    if isinstance(node, list):
        return [strip_docs(v) for v in node]
    return node


def refs(node, out):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                out.add(v.rsplit("/", 1)[-1])
            else:
                refs(v, out)
    elif isinstance(node, list):
        for v in node:
            refs(v, out)


def event_type(schema):
    t = schema.get("properties", {}).get("type", {})
    return t.get("const") or (t.get("enum") or [None])[0]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    repo, rev = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "HEAD")
    git = ["git", "-C", repo]
    commit = subprocess.check_output(git + ["rev-parse", rev + "^{commit}"], text=True).strip()
    spec = json.loads(subprocess.check_output(git + ["show", f"{commit}:{SPEC_PATH}"]))
    schemas = spec["components"]["schemas"]

    variants = {}
    for v in schemas["ResponseStreamEvent"]["anyOf"]:
        name = v["$ref"].rsplit("/", 1)[-1]
        variants[event_type(schemas[name])] = name
    missing = [t for t in STREAM_EVENTS if t not in variants]
    if missing:
        sys.exit(f"not in ResponseStreamEvent: {missing}")
    events = {t: variants[t] for t in STREAM_EVENTS}

    keep, todo = set(), ROOTS + list(events.values())
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep.add(name)
        found = set()
        refs(schemas[name], found)
        todo.extend(found - keep)

    excerpt = {
        "source": {
            "repository": REPOSITORY,
            "path": SPEC_PATH,
            "commit": commit,
            "openapi": spec["openapi"],
            "info_version": spec["info"]["version"],
        },
        "generated_by": "tests/conformance/extract.py (documentation keys removed)",
        "roots": ROOTS,
        "response_stream_events": events,
        "schemas": {n: strip_docs(schemas[n]) for n in sorted(keep)},
    }
    OUT.write_text(json.dumps(excerpt, indent=1, ensure_ascii=False) + "\n")
    print(f"{OUT.name}: {len(keep)} schemas from {commit}")


if __name__ == "__main__":
    main()
