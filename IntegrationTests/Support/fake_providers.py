"""Fake LLM providers for the integration tests — test code only. Each speaks its provider's
published wire format (OpenAI, Azure OpenAI, Anthropic Messages, Bedrock Converse with SigV4
and the binary event stream, Vertex AI generateContent with a service-account OAuth token, and
Ollama /api/chat) well enough to check the gateway's translation both ways.

  fake_providers.py PORT STATE_DIR
writes STATE_DIR/service-account.json (a fresh RSA key) for the Vertex fake.

Model names steer failures: "*-fail" answers 500, "*-slow" never answers in time, "*-drip"
sends its answer's first bytes and never the rest, "*-break"
streams one chunk and then drops the connection, "*-denied" answers 401 (the gateway's key is
refused), "*-redirect" answers 307 to /_stolen (which records what a follower would send). A
negative max_tokens gets OpenAI's 400. GET /_requests lists what was received.
"""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import struct
import sys
import time
import zlib

import uvicorn
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

KEYS = {"openai": "sk-test-openai", "azure": "azure-test-key", "anthropic": "sk-ant-test",
        "aws_access": "AKIDEXAMPLE", "aws_secret": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
RECEIVED: list[dict] = []
PRIVATE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
TOKENS: set[str] = set()


def log(provider: str, request: Request, body) -> None:
    RECEIVED.append({"provider": provider, "path": request.url.path, "query": request.url.query,
                     "headers": {k.lower(): v for k, v in request.headers.items()}, "body": body})


def words(text: str) -> int:
    return max(1, len(text.split()))


def last_user_text(messages) -> str:
    for message in reversed(messages):
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def sample(schema: dict):
    """An instance of a JSON schema: what a model following it would answer."""
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object" or "properties" in schema:
        return {name: sample(sub) for name, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [sample(schema.get("items") or {"type": "string"})]
    if kind == "integer":
        return 42
    if kind == "number":
        return 4.2
    if kind == "boolean":
        return True
    return "fake"


def images(blocks) -> int:
    """How many images a message's content holds, in any provider's shape."""
    if not isinstance(blocks, list):
        return 0
    return sum(1 for b in blocks if isinstance(b, dict) and (b.get("type") in ("image", "image_url") or "image" in b))


async def behave(model: str):
    if model.endswith("-fail"):
        return JSONResponse({"error": {"message": "the fake provider failed on purpose", "type": "server_error"}}, status_code=500)
    if model.endswith("-slow"):
        await asyncio.sleep(30)
    if model.endswith("-drip"):
        async def drip():
            yield b'{"id": "chatcmpl-drip", '
            await asyncio.sleep(30)
            yield b'"object": "chat.completion"}'
        return StreamingResponse(drip(), media_type="application/json")
    return None


# ---- OpenAI and Azure OpenAI -------------------------------------------------------------

async def openai_chat(request: Request, provider: str, model: str):
    body = await request.json()
    log(provider, request, body)
    if isinstance(body.get("max_tokens"), int) and body["max_tokens"] < 0:
        return JSONResponse({"error": {"message": "Invalid 'max_tokens': integer below minimum value.", "type": "invalid_request_error",
                                       "param": "max_tokens", "code": "integer_below_min_value"}}, status_code=400)
    if model.endswith("-denied"):
        return JSONResponse({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}}, status_code=401)
    if model.endswith("-redirect"):
        return PlainTextResponse("moved", status_code=307, headers={"Location": "/_stolen"})
    failure = await behave(model)
    if failure:
        return failure
    text = f"{provider} says: {last_user_text(body['messages'])}"
    seen = images(body["messages"][-1].get("content"))
    if seen:
        text += f" (saw {seen} image{'s' if seen > 1 else ''})"
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        text = json.dumps(sample(fmt["json_schema"]["schema"]))
    usage = {"prompt_tokens": words(json.dumps(body["messages"])), "completion_tokens": words(text)}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    message = {"role": "assistant", "content": text}
    finish = "stop"
    if body.get("tools") and body["messages"][-1]["role"] == "user":
        name = body["tools"][0]["function"]["name"]
        message = {"role": "assistant", "content": None,
                   "tool_calls": [{"id": "call_fake1", "type": "function", "function": {"name": name, "arguments": json.dumps({"query": "vpn"})}}]}
        finish = "tool_calls"
    if not body.get("stream"):
        return JSONResponse({"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
                             "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage})

    async def events():
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
        yield f"data: {json.dumps({**base, 'choices': [{'index': 0, 'delta': {'role': 'assistant', 'content': ''}, 'finish_reason': None}]})}\n\n"
        for index, word in enumerate(text.split(" ")):
            yield f"data: {json.dumps({**base, 'choices': [{'index': 0, 'delta': {'content': (' ' if index else '') + word}, 'finish_reason': None}]})}\n\n"
            if model.endswith("-break"):
                raise ConnectionResetError("dropped on purpose")
        yield f"data: {json.dumps({**base, 'choices': [{'index': 0, 'delta': {}, 'finish_reason': finish}]})}\n\n"
        if (body.get("stream_options") or {}).get("include_usage"):
            yield f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n"
        yield "data: [DONE]\n\n"
    return StreamingResponse(events(), media_type="text/event-stream")


async def openai_endpoint(request: Request):
    if request.headers.get("authorization") != f"Bearer {KEYS['openai']}":
        return JSONResponse({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}, status_code=401)
    body = json.loads(await request.body())
    return await openai_chat(request, "openai", body.get("model", ""))


async def openai_embeddings(request: Request):
    body = await request.json()
    log("openai", request, body)
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    return JSONResponse({"object": "list", "model": body["model"], "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)},
                         "data": [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]} for i, _ in enumerate(inputs)]})


async def azure_endpoint(request: Request):
    if request.headers.get("api-key") != KEYS["azure"] or not request.query_params.get("api-version"):
        return JSONResponse({"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint."}}, status_code=401)
    return await openai_chat(request, "azure", request.path_params["deployment"])


# ---- Anthropic ------------------------------------------------------------------------------

async def anthropic_endpoint(request: Request):
    if request.headers.get("x-api-key") != KEYS["anthropic"] or not request.headers.get("anthropic-version"):
        return JSONResponse({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}, status_code=401)
    body = await request.json()
    log("anthropic", request, body)
    for required in ("model", "max_tokens", "messages"):
        if required not in body:
            return JSONResponse({"type": "error", "error": {"type": "invalid_request_error", "message": f"{required}: Field required"}}, status_code=400)
    failure = await behave(body["model"])
    if failure:
        return failure
    last = body["messages"][-1]
    blocks = last["content"] if isinstance(last["content"], list) else [{"type": "text", "text": last["content"]}]
    results = [b for b in blocks if b.get("type") == "tool_result"]
    forced = (body.get("tool_choice") or {}).get("name")
    if results:
        content = [{"type": "text", "text": f"anthropic read the tool result: {results[0]['content']}"}]
        stop = "end_turn"
    elif forced:
        tool = next(t for t in body["tools"] if t["name"] == forced)
        content = [{"type": "tool_use", "id": "toolu_fake2", "name": forced, "input": sample(tool["input_schema"])}]
        stop = "tool_use"
    elif body.get("tools"):
        content = [{"type": "text", "text": "Let me search."},
                   {"type": "tool_use", "id": "toolu_fake1", "name": body["tools"][0]["name"], "input": {"query": "vpn"}}]
        stop = "tool_use"
    else:
        text = " ".join(b.get("text", "") for b in blocks)
        seen = images(blocks)
        content = [{"type": "text", "text": f"anthropic says: {text}" + (f" (saw {seen} image{'s' if seen > 1 else ''})" if seen else "")}]
        stop = "end_turn"
    usage = {"input_tokens": words(json.dumps(body["messages"])), "output_tokens": 7}
    if not body.get("stream"):
        return JSONResponse({"id": "msg_fake", "type": "message", "role": "assistant", "model": body["model"], "content": content,
                             "stop_reason": stop, "stop_sequence": None, "usage": usage})

    async def events():
        def event(name, data):
            return f"event: {name}\ndata: {json.dumps(data)}\n\n"
        yield event("message_start", {"type": "message_start", "message": {"id": "msg_fake", "type": "message", "role": "assistant", "content": [],
                                                                           "model": body["model"], "stop_reason": None, "usage": {"input_tokens": usage["input_tokens"], "output_tokens": 1}}})
        yield event("ping", {"type": "ping"})
        for index, block in enumerate(content):
            if block["type"] == "text":
                yield event("content_block_start", {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})
                for piece in block["text"].split(" "):
                    yield event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece + " "}})
                    if body["model"].endswith("-break"):
                        raise ConnectionResetError("dropped on purpose")
            else:
                yield event("content_block_start", {"type": "content_block_start", "index": index,
                                                     "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}})
                encoded = json.dumps(block["input"])
                half = len(encoded) // 2
                for piece in (encoded[:half], encoded[half:]):
                    yield event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": piece}})
            yield event("content_block_stop", {"type": "content_block_stop", "index": index})
        yield event("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": usage["output_tokens"]}})
        yield event("message_stop", {"type": "message_stop"})
    return StreamingResponse(events(), media_type="text/event-stream")


async def anthropic_count_tokens(request: Request):
    if request.headers.get("x-api-key") != KEYS["anthropic"] or not request.headers.get("anthropic-version"):
        return JSONResponse({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}, status_code=401)
    body = await request.json()
    log("anthropic-count", request, body)
    return JSONResponse({"input_tokens": 1000 + words(json.dumps(body["messages"]))})


# ---- Bedrock --------------------------------------------------------------------------------

def sigv4_valid(request: Request, body: bytes) -> bool:
    auth = request.headers.get("authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return False
    fields = dict(part.strip().split("=", 1) for part in auth[len("AWS4-HMAC-SHA256 "):].split(","))
    access, day, region, service, _ = fields["Credential"].split("/")
    signed = fields["SignedHeaders"].split(";")
    canonical_headers = "".join(f"{name}:{request.headers.get(name, '').strip()}\n" for name in signed)
    path = request.scope.get("raw_path", b"").decode().split("?")[0]
    canonical_path = "/".join(
        __import__("urllib.parse").parse.quote(segment, safe="-_.~") for segment in path.split("/"))
    payload = hashlib.sha256(body).hexdigest()
    canonical = "\n".join(["POST", canonical_path, request.url.query, canonical_headers, ";".join(signed), payload])
    amz_date = request.headers["x-amz-date"]
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + KEYS["aws_secret"]).encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return access == KEYS["aws_access"] and hmac.compare_digest(expected, fields["Signature"]) and payload == request.headers.get("x-amz-content-sha256")


def event_message(event_type: str, payload: dict) -> bytes:
    headers = b""
    for name, value in ((":event-type", event_type), (":content-type", "application/json"), (":message-type", "event")):
        headers += bytes([len(name)]) + name.encode() + bytes([7]) + struct.pack(">H", len(value)) + value.encode()
    data = json.dumps(payload).encode()
    total = 12 + len(headers) + len(data) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + headers + data
    return message + struct.pack(">I", zlib.crc32(message))


async def bedrock_endpoint(request: Request):
    raw = await request.body()
    if not sigv4_valid(request, raw):
        return JSONResponse({"message": "The request signature we calculated does not match the signature you provided."}, status_code=403)
    body = json.loads(raw)
    model, operation = request.path_params["model"], request.path_params["operation"]
    log("bedrock", request, body)
    failure = await behave(model)
    if failure:
        return JSONResponse({"message": "the fake Bedrock failed on purpose"}, status_code=500)
    last = body["messages"][-1]["content"]
    results = [b["toolResult"] for b in last if "toolResult" in b]
    forced = ((body.get("toolConfig") or {}).get("toolChoice") or {}).get("tool", {}).get("name")
    if results:
        content, stop = [{"text": f"bedrock read the tool result: {results[0]['content'][0]['text']}"}], "end_turn"
    elif forced:
        spec = next(t["toolSpec"] for t in body["toolConfig"]["tools"] if t["toolSpec"]["name"] == forced)
        content, stop = [{"toolUse": {"toolUseId": "tooluse_fake2", "name": forced, "input": sample(spec["inputSchema"]["json"])}}], "tool_use"
    elif body.get("toolConfig"):
        content, stop = [{"toolUse": {"toolUseId": "tooluse_fake1", "name": body["toolConfig"]["tools"][0]["toolSpec"]["name"], "input": {"query": "vpn"}}}], "tool_use"
    else:
        seen = images(last)
        content, stop = [{"text": "bedrock says: " + " ".join(b.get("text", "") for b in last) + (f" (saw {seen} image{'s' if seen > 1 else ''})" if seen else "")}], "end_turn"
    usage = {"inputTokens": 11, "outputTokens": 5, "totalTokens": 16}
    if operation == "converse":
        return JSONResponse({"output": {"message": {"role": "assistant", "content": content}}, "stopReason": stop, "usage": usage, "metrics": {"latencyMs": 5}})

    async def frames():
        yield event_message("messageStart", {"role": "assistant"})
        for index, block in enumerate(content):
            if "text" in block:
                for piece in block["text"].split(" "):
                    yield event_message("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": piece + " "}})
                    if model.endswith("-break"):
                        raise ConnectionResetError("dropped on purpose")
            else:
                use = block["toolUse"]
                yield event_message("contentBlockStart", {"contentBlockIndex": index, "start": {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}})
                yield event_message("contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": json.dumps(use["input"])}}})
            yield event_message("contentBlockStop", {"contentBlockIndex": index})
        yield event_message("messageStop", {"stopReason": stop})
        yield event_message("metadata", {"usage": usage, "metrics": {"latencyMs": 5}})
    return StreamingResponse(frames(), media_type="application/vnd.amazon.eventstream")


# ---- Vertex AI ------------------------------------------------------------------------------

async def vertex_token(request: Request):
    form = await request.form()
    assertion = form.get("assertion", "")
    try:
        header, claims, signature = assertion.split(".")
        pad = lambda s: s + "=" * (-len(s) % 4)
        PRIVATE_KEY.public_key().verify(base64.urlsafe_b64decode(pad(signature)), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
        data = json.loads(base64.urlsafe_b64decode(pad(claims)))
        assert form.get("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer"
        assert data["iss"] == "gateway@fake-project.iam.gserviceaccount.com" and "cloud-platform" in data["scope"]
    except Exception as error:  # noqa: BLE001 — any defect is the same answer
        return JSONResponse({"error": "invalid_grant", "error_description": f"bad assertion: {error}"}, status_code=400)
    token = "ya29.fake-" + hashlib.sha256(assertion.encode()).hexdigest()[:16]
    TOKENS.add(token)
    log("vertex-token", request, {"iss": data["iss"]})
    return JSONResponse({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})


async def vertex_endpoint(request: Request):
    if request.headers.get("authorization", "").removeprefix("Bearer ") not in TOKENS:
        return JSONResponse({"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}}, status_code=401)
    body = await request.json()
    model, method = request.path_params["model_method"].split(":")
    log("vertex", request, body)
    failure = await behave(model)
    if failure:
        return failure
    parts = body["contents"][-1]["parts"]
    responses = [p["functionResponse"] for p in parts if "functionResponse" in p]
    if responses:
        out, finish = [{"text": f"vertex read the tool result: {json.dumps(responses[0]['response'])}"}], "STOP"
    elif body.get("tools"):
        out, finish = [{"functionCall": {"name": body["tools"][0]["functionDeclarations"][0]["name"], "args": {"query": "vpn"}}}], "STOP"
    else:
        out, finish = [{"text": "vertex says: " + " ".join(p.get("text", "") for p in parts)}], "STOP"
    usage = {"promptTokenCount": 9, "candidatesTokenCount": 4, "totalTokenCount": 13}
    if method == "generateContent":
        return JSONResponse({"candidates": [{"content": {"role": "model", "parts": out}, "finishReason": finish}], "usageMetadata": usage,
                             "modelVersion": model, "responseId": "resp-fake"})

    async def events():
        pieces = out[0]["text"].split(" ") if "text" in out[0] else None
        if pieces:
            for index, piece in enumerate(pieces):
                chunk = {"candidates": [{"content": {"role": "model", "parts": [{"text": piece + " "}]}}]}
                if index == len(pieces) - 1:
                    chunk["candidates"][0]["finishReason"] = finish
                    chunk["usageMetadata"] = usage
                yield f"data: {json.dumps(chunk)}\r\n\r\n"
                if model.endswith("-break"):
                    raise ConnectionResetError("dropped on purpose")
        else:
            yield f"data: {json.dumps({'candidates': [{'content': {'role': 'model', 'parts': out}, 'finishReason': finish}], 'usageMetadata': usage})}\r\n\r\n"
    return StreamingResponse(events(), media_type="text/event-stream")


# ---- Ollama ---------------------------------------------------------------------------------

async def ollama_chat(request: Request):
    body = await request.json()
    log("ollama", request, body)
    failure = await behave(body["model"])
    if failure:
        return JSONResponse({"error": "the fake Ollama failed on purpose"}, status_code=500)
    last = body["messages"][-1]
    if last["role"] == "tool":
        message = {"role": "assistant", "content": f"ollama read the tool result: {last['content']}"}
    elif body.get("tools"):
        message = {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": body["tools"][0]["function"]["name"], "arguments": {"query": "vpn"}}}]}
    else:
        message = {"role": "assistant", "content": f"ollama says: {last['content']}"}
    final = {"model": body["model"], "created_at": "2026-11-25T00:00:00Z", "done": True, "done_reason": "stop",
             "prompt_eval_count": 8, "eval_count": 6}
    if not body.get("stream", True):
        return JSONResponse({**final, "message": message})

    async def lines():
        if message.get("tool_calls"):
            yield json.dumps({"model": body["model"], "created_at": "2026-11-25T00:00:00Z", "message": message, "done": False}) + "\n"
        else:
            for piece in message["content"].split(" "):
                yield json.dumps({"model": body["model"], "created_at": "2026-11-25T00:00:00Z",
                                  "message": {"role": "assistant", "content": piece + " "}, "done": False}) + "\n"
                if body["model"].endswith("-break"):
                    raise ConnectionResetError("dropped on purpose")
        yield json.dumps({**final, "message": {"role": "assistant", "content": ""}}) + "\n"
    return StreamingResponse(lines(), media_type="application/x-ndjson")


async def ollama_embed(request: Request):
    body = await request.json()
    log("ollama", request, body)
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    return JSONResponse({"model": body["model"], "embeddings": [[0.4, 0.5, 0.6] for _ in inputs], "prompt_eval_count": len(inputs)})


async def stolen(request: Request):
    log("stolen", request, (await request.body()).decode(errors="replace"))
    return JSONResponse({"error": {"message": "a redirect was followed"}}, status_code=418)


async def received(request: Request):
    return JSONResponse(RECEIVED)


async def clear(request: Request):
    RECEIVED.clear()
    return PlainTextResponse("ok")


app = Starlette(routes=[
    Route("/openai/v1/chat/completions", openai_endpoint, methods=["POST"]),
    Route("/openai/v1/embeddings", openai_embeddings, methods=["POST"]),
    Route("/azure/openai/deployments/{deployment}/chat/completions", azure_endpoint, methods=["POST"]),
    Route("/anthropic/v1/messages", anthropic_endpoint, methods=["POST"]),
    Route("/anthropic/v1/messages/count_tokens", anthropic_count_tokens, methods=["POST"]),
    Route("/bedrock/model/{model}/{operation}", bedrock_endpoint, methods=["POST"]),
    Route("/vertex/token", vertex_token, methods=["POST"]),
    Route("/vertex/v1/projects/{project}/locations/{location}/publishers/google/models/{model_method}", vertex_endpoint, methods=["POST"]),
    Route("/ollama/api/chat", ollama_chat, methods=["POST"]),
    Route("/ollama/api/embed", ollama_embed, methods=["POST"]),
    Route("/_stolen", stolen, methods=["POST", "GET"]),
    Route("/_requests", received, methods=["GET"]),
    Route("/_clear", clear, methods=["POST"]),
])


if __name__ == "__main__":
    port, state = int(sys.argv[1]), sys.argv[2]
    os.makedirs(state, exist_ok=True)
    pem = PRIVATE_KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with open(os.path.join(state, "service-account.json"), "w") as f:
        json.dump({"type": "service_account", "project_id": "fake-project", "private_key_id": "fake-key-1", "private_key": pem,
                   "client_email": "gateway@fake-project.iam.gserviceaccount.com", "token_uri": f"http://127.0.0.1:{port}/vertex/token"}, f)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
