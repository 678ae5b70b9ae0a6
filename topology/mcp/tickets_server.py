"""A Streamable HTTP MCP server (fastmcp) standing in for an enterprise ticket system.

Usage: tickets_server.py PORT [extra_tools]
extra_tools: how many generated tools to add (the 1,000-tool benchmark).
"""
import asyncio
import sys

from fastmcp import Context, FastMCP

mcp = FastMCP("tickets")
TICKETS: list[dict] = []


@mcp.tool
def create_ticket(title: str, priority: str = "normal") -> dict:
    """Open a ticket."""
    ticket = {"id": len(TICKETS) + 1, "title": title, "priority": priority}
    TICKETS.append(ticket)
    return ticket


@mcp.tool
def list_tickets() -> list[dict]:
    """List open tickets."""
    return TICKETS


@mcp.tool
def delete_ticket(id: int) -> str:
    """Delete a ticket."""
    return f"deleted {id}"


@mcp.tool
def echo(text: str) -> str:
    """Return the text (for latency measurements)."""
    return text


@mcp.tool
async def hang(seconds: float = 3600) -> str:
    """Sleep for a long time (for timeout tests)."""
    await asyncio.sleep(seconds)
    return "woke up"


@mcp.tool
async def long_task(steps: int, ctx: Context) -> str:
    """Report progress for each step."""
    for step in range(steps):
        await ctx.report_progress(step + 1, steps, f"step {step + 1}")
        await asyncio.sleep(0.01)
    return f"done {steps} steps"


@mcp.resource("tickets://open", name="open-tickets", mime_type="application/json")
def open_tickets() -> list[dict]:
    return TICKETS


@mcp.prompt
def triage(ticket: str) -> str:
    """Triage a ticket."""
    return f"Triage this ticket: {ticket}"


def add_generated(count: int) -> None:
    from fastmcp.tools import Tool

    def generated(value: str = "") -> str:
        return value

    for index in range(count):
        mcp.add_tool(Tool.from_function(generated, name=f"generated_{index:04d}", description=f"Generated tool number {index}."))


if __name__ == "__main__":
    port = int(sys.argv[1])
    if len(sys.argv) > 2:
        add_generated(int(sys.argv[2]))
    mcp.run(transport="http", host="127.0.0.1", port=port, path="/mcp", show_banner=False)
