"""A stdio MCP server (fastmcp) standing in for an enterprise file server in the quickstart and tests.

FILES_DESCRIPTION_FILE, when set, holds the description of read_file: rewriting it and
restarting the server changes that tool's definition (the gateway must then hide it).
"""
import os

from fastmcp import FastMCP

mcp = FastMCP("files")
DOCS = {"readme": "Portless keeps MCP servers dark.", "runbook": "Restart the tunneler, never the router."}


def read_file_description() -> str:
    path = os.environ.get("FILES_DESCRIPTION_FILE")
    if path and os.path.exists(path):
        with open(path) as f:
            return f.read().strip()
    return "Read a document by name."


@mcp.tool(description=read_file_description())
def read_file(name: str) -> str:
    return DOCS.get(name, f"no document named {name}")


@mcp.tool
def write_file(name: str, text: str) -> str:
    """Write a document."""
    DOCS[name] = text
    return f"wrote {len(text)} characters to {name}"


@mcp.tool
def search(query: str) -> list[str]:
    """Find documents whose text contains the query."""
    return [name for name, text in DOCS.items() if query.lower() in text.lower()]


@mcp.resource("file:///docs/readme", name="readme", mime_type="text/plain")
def readme() -> str:
    return DOCS["readme"]


@mcp.resource("file:///secrets/keys", name="keys", mime_type="text/plain")
def keys() -> str:
    return "not for everyone"


@mcp.resource("file:///docs/{name}", name="doc")
def doc(name: str) -> str:
    return DOCS.get(name, "")


@mcp.prompt
def summarize(name: str) -> str:
    """Ask for a summary of a document."""
    return f"Summarize the document {name}."


if __name__ == "__main__":
    mcp.run(show_banner=False)
