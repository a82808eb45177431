"""ASGI pieces the HTTP side of `vidclf serve` shares: whole answers, a request replayed as JSON, an
answer collected, and a 200 whose JSON status is an error turned into 422."""

from __future__ import annotations

import asyncio
import json


def as_json(scope: dict, request: dict) -> dict:
    body = json.dumps(request).encode()
    headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")]
    return {**scope, "headers": [*headers, (b"content-type", b"application/json"),
                                 (b"content-length", str(len(body)).encode())]}


async def never():
    """An ASGI receive for a request made here: after its body, the connection stays (nothing more)."""
    await asyncio.Event().wait()


def once(body: bytes, receive):
    """An ASGI receive that gives `body` first, then whatever the connection says (a disconnect)."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def errors_422(send):
    """An ASGI send that turns a 200 answer whose JSON status is an error into 422."""
    start: dict = {}
    chunks: list[bytes] = []

    async def relay(message):
        if message["type"] == "http.response.start":
            start.update(message)
            return
        if message["type"] != "http.response.body":
            return await send(message)
        chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return
        body, status = b"".join(chunks), start["status"]
        try:
            if status == 200 and str(json.loads(body).get("status", "")).startswith("error"):
                status = 422
        except (ValueError, AttributeError):
            pass
        headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
        await send({**start, "status": status, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return relay


async def answer(send, status: int, body, content_type: str = "application/json") -> None:
    """A whole response: JSON for a dict, else bytes."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
