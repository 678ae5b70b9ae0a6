"""A Streamable HTTP MCP server (fastmcp, 2026-07-28) with a tool that asks for input the
stateless way: it returns `input_required` until the client retries with the answer.

Usage: guard_http_server.py PORT
"""
import sys

import mcp_types
from fastmcp import Context, FastMCP

mcp = FastMCP("guard")


@mcp.tool
async def confirm(action: str, ctx: Context) -> mcp_types.CallToolResult | mcp_types.InputRequiredResult:
    """Do `action` once the user confirms it."""
    answers = ctx.input_responses or {}
    answer = answers.get("ok")
    if answer is None:
        request = mcp_types.ElicitRequest(params=mcp_types.ElicitRequestFormParams(
            message=f"Really {action}?",
            requested_schema={"type": "object", "properties": {"value": {"type": "boolean"}}, "required": ["value"]}))
        return mcp_types.InputRequiredResult(input_requests={"ok": request})
    content = getattr(answer, "content", None) or {}
    return mcp_types.CallToolResult(content=[mcp_types.TextContent(type="text", text=f"{action}: {getattr(answer, 'action', '?')} {content}")])


@mcp.tool
def echo(text: str) -> str:
    """Return the text."""
    return text


if __name__ == "__main__":
    mcp.run(transport="http", host="127.0.0.1", port=int(sys.argv[1]), path="/mcp", show_banner=False)
