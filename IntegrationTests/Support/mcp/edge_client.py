"""The official MCP Python client against the gateway's edge cases (IntegrationTests/MCPEdgeTests).
Prints one JSON object per line; the Swift tests assert on the last one.

  call URL TOOL JSON [--mode M]     a tool call (JSON may be @FILE); logs received on the way are listed
  ask URL QUESTION [--mode M]       a tool that samples the client's model and elicits from its user
  idle URL SECONDS [--mode M]       holds a session open and lists every log message it receives
M is "legacy" (2025-11-25, the default) or "2026-07-28".
"""
import asyncio
import json
import sys

import mcp_types as types
from mcp import Client
from mcp.shared.exceptions import MCPError


def emit(value) -> None:
    print(json.dumps(value), flush=True)


async def main() -> None:
    args = sys.argv[1:]
    mode = "legacy"
    if "--mode" in args:
        index = args.index("--mode")
        mode = args[index + 1]
        del args[index:index + 2]
    command, url, rest = args[0], args[1], args[2:]
    logs: list[str] = []
    asked: list[str] = []

    async def on_log(params) -> None:
        logs.append(f"{params.level}:{params.data}")

    async def on_sampling(context, params):
        asked.append("sampling")
        text = params.messages[-1].content.text
        return types.CreateMessageResult(role="assistant", content=types.TextContent(type="text", text=f"echo({text})"), model="test-model")

    async def on_elicit(context, params):
        asked.append("elicitation")
        return types.ElicitResult(action="accept", content={"value": True})

    options = dict(mode=mode, logging_callback=on_log, sampling_callback=on_sampling, elicitation_callback=on_elicit)
    if mode != "legacy":
        options["log_level"] = "debug"
    async with Client(url, **options) as client:
        try:
            if command == "call":
                arguments = rest[1] if len(rest) > 1 else "{}"
                if arguments.startswith("@"):
                    with open(arguments[1:]) as f:
                        arguments = f.read()
                result = await client.call_tool(rest[0], json.loads(arguments))
                text = "".join(getattr(c, "text", "") for c in result.content)
                emit({"result": text, "isError": bool(result.is_error), "logs": logs, "asked": asked})
            elif command == "ask":
                result = await client.call_tool("edge__ask", {"question": rest[0]})
                text = "".join(getattr(c, "text", "") for c in result.content)
                emit({"result": text, "isError": bool(result.is_error), "asked": asked})
            elif command == "idle":
                if mode == "legacy":
                    await client.set_logging_level("debug")
                emit({"ready": True})
                await asyncio.sleep(float(rest[0]))
                emit({"logs": logs})
            else:
                raise SystemExit(f"unknown command {command}")
        except MCPError as exc:
            emit({"error": {"code": exc.error.code, "message": exc.error.message}, "logs": logs, "asked": asked})


if __name__ == "__main__":
    asyncio.run(main())
