"""Recomputes keyward's tools-hash as an independent client and prints what it saw as one JSON object.

Usage: python python_tools_hash.py KEYWARD_BINARY ARGS...
Run by tests/integrity.rs, with the SDK from the venv that scripts/test makes.

The official MCP Python SDK drives the real server over stdio in both protocol generations. The
SDK's typed models may drop or reshape fields they do not know, so the hash is taken over the raw
JSON-RPC results as they came off the wire: the transport's read stream is wrapped to keep a copy
of each result before the SDK parses it. The hashing is the README's recipe, word for word.
"""
import asyncio
import copy
import hashlib
import importlib.metadata
import json
import sys
from contextlib import asynccontextmanager

from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client


def tools_hash(tools: list) -> str:
    canonical = json.dumps(tools, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class RecordingStream:
    """A read stream that keeps a deep copy of every JSON-RPC result passing through it."""

    def __init__(self, inner, results: list) -> None:
        self._inner = inner
        self._results = results

    def _keep(self, item):
        result = getattr(getattr(item, "message", None), "result", None)
        if isinstance(result, dict):
            self._results.append(copy.deepcopy(result))
        return item

    async def receive(self):
        return self._keep(await self._inner.receive())

    def __aiter__(self):
        return self

    async def __anext__(self):
        return self._keep(await self._inner.__anext__())

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()


@asynccontextmanager
async def recording_stdio(params: StdioServerParameters, results: list):
    async with stdio_client(params) as (read, write):
        yield RecordingStream(read, results), write


async def session(mode: str) -> dict:
    params = StdioServerParameters(command=sys.argv[1], args=sys.argv[2:])
    results: list = []
    async with Client(recording_stdio(params, results), mode=mode) as client:
        typed = await client.list_tools()
        listed = [r for r in results if "tools" in r]
        # initialize answers with serverInfo; server/discover carries it in _meta.
        hello = next(r for r in results if "serverInfo" in r or "supportedVersions" in r)
        server_info = hello.get("serverInfo") or hello.get("_meta", {}).get(
            "io.modelcontextprotocol/serverInfo", {}
        )
        return {
            "protocol_version": client.protocol_version,
            "tools_hash": tools_hash(listed[-1]["tools"]),
            "tool_names": [tool["name"] for tool in listed[-1]["tools"]],
            "typed_tool_names": [tool.name for tool in typed.tools],
            "instructions": hello.get("instructions"),
            "description": server_info.get("description"),
        }


async def main() -> None:
    report = {"sdk_version": importlib.metadata.version("mcp")}
    for mode in ("legacy", "auto"):
        report[mode] = await session(mode)
    print(json.dumps(report))


asyncio.run(main())
