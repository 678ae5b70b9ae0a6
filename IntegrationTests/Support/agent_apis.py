"""Drives the LLM gateway's Responses and Messages APIs with the official clients (PyPI `openai`
and `anthropic`), as agents such as Codex CLI, the OpenAI Agents SDK and Claude Code do (test code).
Every command prints one JSON object; errors print {"error": {"status", "message"}}.

  responses text|json|tools|stream|previous|get|delete|chat URL MODEL [ARG]   (chat: chat.completions and /v1/models)
  messages text|tools|image|stream|count URL MODEL

URL is the intercept's base: http://127.0.0.1:PORT/v1 for OpenAI, http://127.0.0.1:PORT for Anthropic.
"""
import base64
import json
import sys

import anthropic
import openai

TOOLS_OPENAI = [{"type": "function", "name": "search_tickets", "description": "Search the ticket system.",
                 "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}]
TOOLS_ANTHROPIC = [{"name": "search_tickets", "description": "Search the ticket system.",
                    "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}]
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
          "required": ["city", "population"], "additionalProperties": False}
# A 1x1 PNG.
PIXEL = base64.b64encode(bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                                       "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")).decode()


def emit(value) -> None:
    print(json.dumps(value), flush=True)


def responses(command: str, url: str, model: str, rest: list) -> None:
    client = openai.OpenAI(base_url=url, api_key="not-needed", max_retries=0, timeout=60)
    if command == "text":
        r = client.responses.create(model=model, input="Say hello to Lyon", instructions="Be brief.")
        emit({"id": r.id, "text": r.output_text, "status": r.status, "model": r.model, "usage": r.usage.model_dump() if r.usage else None})
    elif command == "json":
        r = client.responses.create(model=model, input="Which city?", text={"format": {"type": "json_schema", "name": "city", "schema": SCHEMA, "strict": True}})
        emit({"text": r.output_text, "parsed": json.loads(r.output_text)})
    elif command == "tools":
        first = client.responses.create(model=model, input="Use the tool to find tickets about the VPN", tools=TOOLS_OPENAI)
        calls = [item for item in first.output if item.type == "function_call"]
        call = calls[0]
        second = client.responses.create(model=model, previous_response_id=first.id, tools=TOOLS_OPENAI,
                                         input=[{"type": "function_call_output", "call_id": call.call_id, "output": "3 tickets: VPN down in Lyon"}])
        emit({"tool": call.name, "arguments": json.loads(call.arguments), "answer": second.output_text})
    elif command == "stream":
        types, text, final = [], "", None
        with client.responses.stream(model=model, input="Say hello to Lyon") as stream:
            for event in stream:
                types.append(event.type)
                if event.type == "response.output_text.delta":
                    text += event.delta
            try:
                final = stream.get_final_response()
            except RuntimeError:  # the stream ended in response.failed (a cut provider stream)
                emit({"types": types, "text": text, "failed": True})
                return
        emit({"types": types, "text": text, "final": final.output_text, "usage": final.usage.model_dump() if final.usage else None})
    elif command == "previous":
        first = client.responses.create(model=model, input="My name is Ada Lovelace")
        second = client.responses.create(model=model, input="What is my name?", previous_response_id=first.id)
        emit({"first": first.id, "second": second.id, "text": second.output_text})
    elif command == "chat":
        c = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Say hello to Lyon"}])
        emit({"text": c.choices[0].message.content, "models": sorted(m.id for m in client.models.list())})
    elif command == "get":
        emit({"id": client.responses.retrieve(rest[0]).id})
    elif command == "delete":
        client.responses.delete(rest[0])
        emit({"deleted": True})


def messages(command: str, url: str, model: str) -> None:
    client = anthropic.Anthropic(base_url=url, api_key="not-needed", max_retries=0, timeout=60)
    if command == "text":
        m = client.messages.create(model=model, max_tokens=200, system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
                                   messages=[{"role": "user", "content": "Say hello to Lyon"}],
                                   extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"})
        emit({"text": "".join(b.text for b in m.content if b.type == "text"), "stop": m.stop_reason, "model": m.model, "usage": m.usage.model_dump()})
    elif command == "tools":
        first = client.messages.create(model=model, max_tokens=200, tools=TOOLS_ANTHROPIC,
                                       messages=[{"role": "user", "content": "Use the tool to find tickets about the VPN"}])
        use = next(b for b in first.content if b.type == "tool_use")
        second = client.messages.create(model=model, max_tokens=200, tools=TOOLS_ANTHROPIC, messages=[
            {"role": "user", "content": "Use the tool to find tickets about the VPN"},
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "3 tickets: VPN down in Lyon"}]},
        ])
        emit({"stop": first.stop_reason, "tool": use.name, "input": use.input, "answer": "".join(b.text for b in second.content if b.type == "text")})
    elif command == "image":
        m = client.messages.create(model=model, max_tokens=200, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}},
            {"type": "text", "text": "What is in this picture?"}]}])
        emit({"text": "".join(b.text for b in m.content if b.type == "text")})
    elif command == "stream":
        types, text = [], ""
        with client.messages.stream(model=model, max_tokens=200, messages=[{"role": "user", "content": "Say hello to Lyon"}]) as stream:
            for event in stream:
                types.append(event.type)
            final = stream.get_final_message()
            text = "".join(b.text for b in final.content if b.type == "text")
        emit({"types": types, "text": text, "stop": final.stop_reason, "usage": final.usage.model_dump()})
    elif command == "count":
        count = client.messages.count_tokens(model=model, messages=[{"role": "user", "content": "Say hello to Lyon, the city of lights"}])
        emit({"input_tokens": count.input_tokens})


def main() -> None:
    api, command, url, model, rest = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
    try:
        (responses(command, url, model, rest) if api == "responses" else messages(command, url, model))
    except (openai.APIStatusError, anthropic.APIStatusError) as error:
        body = error.body if isinstance(error.body, dict) else {}
        message = body.get("message") or (body.get("error") or {}).get("message") or str(error)
        emit({"error": {"status": error.status_code, "message": message, "type": (body.get("error") or {}).get("type") or body.get("type")}})


if __name__ == "__main__":
    main()
