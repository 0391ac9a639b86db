"""Moves funds through the official MCP Python SDK as a host with elicitation would.

Usage: python python_approve.py RECIPIENT KEYWARD_BINARY ARGS...
Run by tests/external.rs. For each protocol generation it calls wallet_transfer with an elicitation
callback: shown the approval page's address (URL mode), the scripted human opens the page, reads
the form and approves with a code computed from the fixture wallet's TOTP secret (RFC 6238's
published SHA-1 test secret), then accepts. It prints what it saw as one JSON object.
"""
import asyncio
import hashlib
import hmac
import json
import re
import struct
import sys
import time
import urllib.parse
import urllib.request

from mcp import Client, StdioServerParameters, types

TOTP_SECRET = b"12345678901234567890"
PASSWORD = "keyward fixture password"


def totp(step: int) -> str:
    mac = hmac.new(TOTP_SECRET, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


class Human:
    """Remembers the last step used: keyward accepts each code once."""

    def __init__(self) -> None:
        self.last_step = None

    def code(self) -> str:
        while True:
            current = int(time.time()) // 30
            for step in (current - 1, current, current + 1):
                if self.last_step is None or step > self.last_step:
                    self.last_step = step
                    return totp(step)
            time.sleep(0.5)

    def approve(self, url: str) -> str:
        page = urllib.request.urlopen(url, timeout=30).read().decode()

        def field(name: str):
            tag = re.search(r'<input[^>]*name="%s"[^>]*>' % name, page)
            if tag is None:
                return None
            value = re.search(r'value="([^"]*)"', tag.group(0))
            return value.group(1) if value else ""

        form = {"csrf": field("csrf"), "digest": field("digest"), "code": self.code(), "decision": "approve"}
        if field("password") is not None:
            form["password"] = PASSWORD
        origin = url.split("/approve/")[0]
        request = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), headers={"Origin": origin})
        return urllib.request.urlopen(request, timeout=30).read().decode()


async def session(mode: str, human: Human, amount: str) -> dict:
    seen = {"modes": [], "answers": [], "progress": []}

    async def elicit(context, params):
        seen["modes"].append(params.mode)
        if params.mode != "url":
            return types.ElicitResult(action="decline")
        seen["answers"].append(await asyncio.to_thread(human.approve, params.url))
        return types.ElicitResult(action="accept")

    async def progress(value, total, message):
        seen["progress"].append(message)

    params = StdioServerParameters(command=sys.argv[2], args=sys.argv[3:])
    async with Client(params, mode=mode, elicitation_callback=elicit) as client:
        result = await client.call_tool(
            "wallet_transfer", {"to": sys.argv[1], "amount": amount}, progress_callback=progress
        )
        seen["protocol_version"] = client.protocol_version
        seen["is_error"] = result.is_error
        seen["result"] = result.structured_content
    return seen


async def main() -> None:
    human = Human()
    report = {}
    for mode, amount in (("legacy", "0.125"), ("auto", "0.0625")):
        report[mode] = await session(mode, human, amount)
    print(json.dumps(report))


asyncio.run(main())
