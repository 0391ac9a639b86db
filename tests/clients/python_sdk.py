"""Drives keyward with the official MCP Python SDK and prints what it saw as one JSON object.

Usage: python python_sdk.py KEYWARD_BINARY ARGS...
Run by tests/external_clients.rs, with the SDK from the venv that scripts/test makes.
"""
import asyncio
import importlib.metadata
import json
import sys

from mcp import Client, StdioServerParameters


async def session(mode: str) -> dict:
    params = StdioServerParameters(command=sys.argv[1], args=sys.argv[2:])
    async with Client(params, mode=mode) as client:
        tools = await client.list_tools()
        accounts = await client.call_tool("wallet_accounts", {})
        balances = await client.call_tool("wallet_balances", {"account": "main"})
        bad = await client.call_tool("wallet_balances", {"block": -1})
        return {
            "protocol_version": client.protocol_version,
            "server": client.server_info.name if client.server_info else None,
            "version": client.server_info.version if client.server_info else None,
            "tools": [tool.name for tool in tools.tools],
            "read_only": [bool(tool.annotations and tool.annotations.read_only_hint) for tool in tools.tools],
            "accounts": accounts.structured_content,
            "balances_is_error": balances.is_error,
            "balances": balances.structured_content,
            "bad_is_error": bad.is_error,
            "bad_text": bad.content[0].text if bad.content else None,
        }


async def main() -> None:
    report = {"sdk_version": importlib.metadata.version("mcp")}
    for mode in ("legacy", "auto"):
        report[mode] = await session(mode)
    print(json.dumps(report))


asyncio.run(main())
