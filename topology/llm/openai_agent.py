"""Drives the Portless LLM gateway with the official OpenAI Python client (PyPI `openai`).

Every command prints one JSON object; the Swift integration tests assert on it.

  models URL                       the model ids
  chat URL MODEL TEXT [--project P] [--hint C]
                                   {"content", "model", "usage", "route": {...headers}} or {"error": {...}}
  stream URL MODEL TEXT            the streamed text, chunk count and usage (include_usage)
  tools URL MODEL                  a tool-call round trip: the call, then the answer to its result
  embed URL MODEL TEXT...          embedding count and dimensions
  raw URL JSON                     a chat completion with exactly this body: its content and route headers
chat takes --max-tokens N too.
URL is the intercept's base, e.g. http://127.0.0.1:PORT/v1 (no API key: the gateway knows the
caller from its certificate; the client needs a placeholder).
"""
import json
import sys

import openai
from openai import OpenAI


def emit(value) -> None:
    print(json.dumps(value), flush=True)


def route(headers) -> dict:
    return {key: headers.get(key) for key in ("x-portless-route", "x-portless-route-class", "x-portless-route-reason", "x-portless-model")}


def main() -> None:
    args = sys.argv[1:]
    options = {}
    for flag in ("--project", "--hint", "--max-tokens"):
        if flag in args:
            index = args.index(flag)
            options[flag] = args[index + 1]
            del args[index:index + 2]
    command, url, rest = args[0], args[1], args[2:]
    headers = {}
    if "--project" in options:
        headers["X-Portless-Project"] = options["--project"]
    if "--hint" in options:
        headers["X-Portless-Route-Class"] = options["--hint"]
    client = OpenAI(base_url=url, api_key="not-needed-portless-knows-the-caller", default_headers=headers, max_retries=0, timeout=60)
    try:
        if command == "models":
            emit({"models": sorted(model.id for model in client.models.list())})
        elif command == "chat":
            extra = {"max_tokens": int(options["--max-tokens"])} if "--max-tokens" in options else {}
            raw = client.chat.completions.with_raw_response.create(model=rest[0], messages=[{"role": "user", "content": rest[1]}], **extra)
            completion = raw.parse()
            emit({"content": completion.choices[0].message.content, "model": completion.model,
                  "usage": completion.usage.model_dump() if completion.usage else None, "route": route(raw.headers)})
        elif command == "stream":
            stream = client.chat.completions.create(model=rest[0], messages=[{"role": "user", "content": rest[1]}], stream=True,
                                                    stream_options={"include_usage": True})
            text, chunks, usage = "", 0, None
            try:
                for chunk in stream:
                    chunks += 1
                    if chunk.choices and chunk.choices[0].delta.content:
                        text += chunk.choices[0].delta.content
                    if chunk.usage:
                        usage = chunk.usage.model_dump()
            except openai.APIError as error:  # the stream broke after it started
                emit({"content": text, "chunks": chunks, "broken": str(error)})
                return
            emit({"content": text, "chunks": chunks, "usage": usage})
        elif command == "tools":
            tools = [{"type": "function", "function": {"name": "search_tickets", "description": "Search the ticket system.",
                                                       "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}]
            messages = [{"role": "user", "content": "Use the tool to find tickets about the VPN"}]
            first = client.chat.completions.create(model=rest[0], messages=messages, tools=tools)
            call = first.choices[0].message.tool_calls[0]
            messages.append(first.choices[0].message.model_dump(exclude_none=True))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": "3 tickets: VPN down in Lyon, VPN slow, VPN cert expired"})
            second = client.chat.completions.create(model=rest[0], messages=messages, tools=tools)
            emit({"finish": first.choices[0].finish_reason, "tool": call.function.name, "arguments": json.loads(call.function.arguments),
                  "answer": second.choices[0].message.content})
        elif command == "embed":
            raw = client.embeddings.with_raw_response.create(model=rest[0], input=rest[1:])
            result = raw.parse()
            emit({"count": len(result.data), "dimensions": len(result.data[0].embedding), "usage": result.usage.model_dump(),
                  "route": route(raw.headers)})
        elif command == "raw":
            raw = client.chat.completions.with_raw_response.create(**json.loads(rest[0]))
            completion = raw.parse()
            emit({"content": completion.choices[0].message.content, "model": completion.model, "route": route(raw.headers)})
        else:
            raise SystemExit(f"unknown command {command}")
    except openai.APIStatusError as error:
        body = error.body if isinstance(error.body, dict) else {}
        emit({"error": {"status": error.status_code, "message": body.get("message") or str(error), "code": body.get("code")}})


if __name__ == "__main__":
    main()
