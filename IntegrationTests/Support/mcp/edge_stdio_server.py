"""A stdio MCP server (fastmcp) whose tools exercise the gateway's edges in tests:
logging, exact numbers, requests to the client (sampling, elicitation), its environment,
the trace context it was called in, and a process that stops reading its stdin.
"""
import json
import os
import signal

import mcp_types
from fastmcp import Context, FastMCP

mcp = FastMCP("edge")


@mcp.tool
async def log_twice(text: str, ctx: Context) -> str:
    """Send two log messages about this call, then answer."""
    await ctx.info(f"first: {text}")
    await ctx.warning(f"second: {text}")
    return f"logged {text}"


@mcp.tool
def trace_context(ctx: Context) -> str:
    """The W3C traceparent this call carried in params._meta ("" when none)."""
    meta = ctx.request_context.meta
    if meta is None:
        return ""
    fields = meta.model_dump() if hasattr(meta, "model_dump") else dict(meta)
    return str(fields.get("traceparent", ""))


@mcp.tool
def echo_number(n: int) -> str:
    """Return the integer exactly as received."""
    return str(n)


@mcp.tool
async def ask(question: str, ctx: Context) -> str:
    """Ask the client's model (sampling), then ask its user to confirm (elicitation)."""
    sampled = await ctx.session.create_message(
        [mcp_types.SamplingMessage(role="user", content=mcp_types.TextContent(type="text", text=question))],
        max_tokens=50, related_request_id=ctx.request_id)
    confirmed = await ctx.elicit("Proceed?", bool)
    value = getattr(confirmed, "data", None)
    return f"model said {sampled.content.text}; user {confirmed.action} {value}"


@mcp.tool
def environment() -> str:
    """The variables this process was started with."""
    return json.dumps(sorted(os.environ.keys()))


@mcp.tool
def freeze() -> str:
    """Stop this process (it reads nothing more) until the gateway restarts it."""
    os.kill(os.getpid(), signal.SIGSTOP)
    return "thawed"


@mcp.tool
def pid() -> str:
    """This process's id."""
    return str(os.getpid())


if __name__ == "__main__":
    mcp.run(show_banner=False)
