"""Drives the Portless MCP gateway with the official MCP Python client (PyPI `mcp`).

Every command prints one JSON object on stdout; the Swift integration tests assert on it.

  inventory URL [--mode M]              every tool, resource, template and prompt (all pages)
  call URL TOOL JSON [--mode M]         call a tool: {"result": ...} or {"error": {...}}
  read URL URI [--mode M]               read a resource
  prompt URL NAME JSON [--mode M]       get a prompt
  progress URL TOOL JSON [--mode M]     call a tool with a progress callback; counts progress
  watch URL SECONDS [--mode M]          print {"ready": tools} then wait for tools/list_changed;
                                        print {"changed": true, "tools": [...]} or {"changed": false}

M is "legacy" (2025-11-25 session, the default) or "2026-07-28" (stateless).
URL may be stdio:IDENTITY_DIR:SERVICE to go through `portless-tunnel mcp-stdio` instead.
"""
import asyncio
import json
import sys

import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError


def emit(value) -> None:
    print(json.dumps(value), flush=True)


async def all_pages(fetch, key):
    items, cursor = [], None
    while True:
        page = await fetch(cursor)
        items += getattr(page, key)
        cursor = page.next_cursor
        if not cursor:
            return items


async def inventory(client: Client) -> dict:
    caps = client.server_capabilities
    tools = await all_pages(lambda c: client.list_tools(cursor=c), "tools")
    resources = await all_pages(lambda c: client.list_resources(cursor=c), "resources")
    templates = await all_pages(lambda c: client.list_resource_templates(cursor=c), "resource_templates")
    prompts = await all_pages(lambda c: client.list_prompts(cursor=c), "prompts")
    return {
        "protocol": client.protocol_version,
        "tools": sorted(t.name for t in tools),
        "resources": sorted(str(r.uri) for r in resources),
        "templates": sorted(t.uri_template for t in templates),
        "prompts": sorted(p.name for p in prompts),
        "listChanged": bool(caps.tools and caps.tools.list_changed),
    }


def error_of(exc: MCPError) -> dict:
    return {"error": {"code": exc.error.code, "message": exc.error.message}}


async def main() -> None:
    args = sys.argv[1:]
    mode = "legacy"
    if "--mode" in args:
        index = args.index("--mode")
        mode = args[index + 1]
        del args[index:index + 2]
    command, url, rest = args[0], args[1], args[2:]
    changed = asyncio.Event()

    async def on_message(message) -> None:
        root = getattr(message, "root", message)
        if isinstance(root, types.ToolListChangedNotification) or getattr(root, "method", "") == "notifications/tools/list_changed":
            changed.set()

    server = url
    if url.startswith("stdio:"):
        _, identity, service = url.split(":", 2)
        server = StdioServerParameters(command="portless-tunnel", args=["mcp-stdio", "--identity", identity, "--service", service])
    async with Client(server, mode=mode, message_handler=on_message) as client:
        try:
            if command == "inventory":
                emit(await inventory(client))
            elif command == "call":
                result = await client.call_tool(rest[0], json.loads(rest[1]) if len(rest) > 1 else {})
                text = "".join(getattr(c, "text", "") for c in result.content)
                emit({"result": {"text": text, "isError": bool(result.is_error)}})
            elif command == "read":
                result = await client.read_resource(rest[0])
                emit({"result": {"text": "".join(getattr(c, "text", "") for c in result.contents)}})
            elif command == "prompt":
                result = await client.get_prompt(rest[0], json.loads(rest[1]) if len(rest) > 1 else {})
                emit({"result": {"messages": [m.content.text for m in result.messages]}})
            elif command == "progress":
                seen = []

                async def on_progress(progress, total, message):
                    seen.append(progress)

                result = await client.call_tool(rest[0], json.loads(rest[1]), progress_callback=on_progress)
                text = "".join(getattr(c, "text", "") for c in result.content)
                emit({"result": {"text": text}, "progress": seen})
            elif command == "watch":
                before = await inventory(client)
                if mode != "legacy":
                    async def listen() -> None:
                        async with client.listen(tools_list_changed=True) as events:
                            async for _ in events:
                                changed.set()
                    listener = asyncio.get_running_loop().create_task(listen())
                    await asyncio.sleep(0.3)
                emit({"ready": before["tools"]})
                try:
                    await asyncio.wait_for(changed.wait(), float(rest[0]))
                except asyncio.TimeoutError:
                    emit({"changed": False})
                    return
                emit({"changed": True, "tools": (await inventory(client))["tools"]})
                if mode != "legacy":
                    listener.cancel()
            else:
                raise SystemExit(f"unknown command {command}")
        except MCPError as exc:
            emit(error_of(exc))


if __name__ == "__main__":
    asyncio.run(main())
