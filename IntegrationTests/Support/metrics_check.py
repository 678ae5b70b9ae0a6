"""Reads a Portless /metrics page with the official Prometheus client's parser (PyPI
`prometheus-client`), and makes the requests whose counts the integration tests then look for.
  scrape URL                 {"samples": [[name, {labels}, value], ...]}; exits 1 if the page does not parse
  chat URL MODEL N [TP]      N chat completions with the official OpenAI client (with a `traceparent`
                             header TP when given): {"ok": N}
"""
import json
import sys
import urllib.request

import openai
from prometheus_client.parser import text_string_to_metric_families


def scrape(url: str) -> None:
    with urllib.request.urlopen(url, timeout=10) as response:
        if not response.headers.get("Content-Type", "").startswith("text/plain"):
            raise SystemExit(f"unexpected content type {response.headers.get('Content-Type')}")
        text = response.read().decode("utf-8")
    samples = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.append([sample.name, sample.labels, sample.value])
    print(json.dumps({"samples": samples, "families": len(samples)}))


def chat(url: str, model: str, count: int, traceparent: str | None) -> None:
    client = openai.OpenAI(base_url=url, api_key="not-needed", max_retries=0, timeout=60)
    headers = {"traceparent": traceparent} if traceparent else None
    for index in range(count):
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": f"count {index}"}], extra_headers=headers)
    print(json.dumps({"ok": count}))


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "scrape":
        scrape(sys.argv[2])
    elif command == "chat":
        chat(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] if len(sys.argv) > 5 else None)
    else:
        raise SystemExit(f"unknown command {command}")
