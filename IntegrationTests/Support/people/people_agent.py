"""An agent acting for a person, with the official clients (PyPI `mcp` and `openai`): the person's
token goes as `Authorization: Bearer` (test code only). Every command prints one JSON object.

  tools URL TOKEN [--mode M]            the tools the gateway shows: {"tools": [...]}
  call URL TOKEN TOOL JSON [--mode M]   {"result": {"text", "isError"}} or {"error": {...}}
  chat BASE_URL TOKEN MODEL             {"model", "content"} or {"error": {"status", "message"}}
  models BASE_URL TOKEN                 {"models": [...]}

TOKEN "-" sends no person (the agent acts for itself). URL may be stdio:IDENTITY_DIR:SERVICE to go
through `portless-tunnel mcp-stdio`; TOKEN is then a file given to its --on-behalf-of.
"""
import asyncio
import json
import sys

import openai
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError


def emit(value) -> None:
    print(json.dumps(value), flush=True)


def headers(token: str) -> dict:
    return {} if token == "-" else {"Authorization": f"Bearer {token}"}


async def mcp_command(command: str, url: str, token: str, rest: list, mode: str) -> None:
    if url.startswith("stdio:"):
        _, identity, service = url.split(":", 2)
        arguments = ["mcp-stdio", "--identity", identity, "--service", service] + (["--on-behalf-of", token] if token != "-" else [])
        transport = StdioServerParameters(command="portless-tunnel", args=arguments)
    else:
        transport = streamable_http_client(url, http_client=create_mcp_http_client(headers=headers(token)))
    try:
        await run_mcp(command, transport, rest, mode)
    except Exception as exc:  # a refusal while connecting (initialize) surfaces as an exception (group)
        emit({"error": {"message": messages(exc)}})


def messages(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(messages(e) for e in exc.exceptions)
    if isinstance(exc, MCPError):
        return exc.error.message
    return str(exc)


async def run_mcp(command: str, transport, rest: list, mode: str) -> None:
    async with Client(transport, mode=mode) as client:
        try:
            if command == "tools":
                tools, cursor = [], None
                while True:
                    page = await client.list_tools(cursor=cursor)
                    tools += [t.name for t in page.tools]
                    cursor = page.next_cursor
                    if not cursor:
                        break
                emit({"tools": sorted(tools)})
            else:
                result = await client.call_tool(rest[0], json.loads(rest[1]) if len(rest) > 1 else {})
                text = "".join(getattr(c, "text", "") for c in result.content)
                emit({"result": {"text": text, "isError": bool(result.is_error)}})
        except MCPError as exc:
            emit({"error": {"code": exc.error.code, "message": exc.error.message}})


def llm_command(command: str, base_url: str, token: str, rest: list) -> None:
    # The OpenAI client sends its api_key as the bearer: the person's token, or a placeholder.
    client = openai.OpenAI(base_url=base_url, api_key=token if token != "-" else "no-key", max_retries=0)
    try:
        if command == "models":
            emit({"models": sorted(m.id for m in client.models.list())})
        else:
            answer = client.chat.completions.create(model=rest[0], messages=[{"role": "user", "content": "hello there"}])
            emit({"model": answer.model, "content": answer.choices[0].message.content})
    except openai.APIStatusError as error:
        emit({"error": {"status": error.status_code, "message": error.message}})


def main() -> None:
    args = sys.argv[1:]
    mode = "legacy"
    if "--mode" in args:
        index = args.index("--mode")
        mode = args[index + 1]
        del args[index:index + 2]
    command, url, token, rest = args[0], args[1], args[2], args[3:]
    if command in ("tools", "call"):
        asyncio.run(mcp_command(command, url, token, rest, mode))
    else:
        llm_command(command, url, token, rest)


if __name__ == "__main__":
    main()
