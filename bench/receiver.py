"""A local receiver for what the hub sends out (app callbacks, webhooks): answers 200 at once
and records when each request arrived.

Runs as its own process (``python -m bench.receiver --port P --out FILE``) so its work is not
counted against the generator's. ``GET /count`` says how many requests have arrived; on
SIGTERM it writes one JSON line per request: arrival (``time.time()``), ``webhook-id`` and,
for app callbacks, the ``user_id`` the message went to.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from aiohttp import web


def build(out: Path) -> web.Application:
    arrivals: list[tuple[float, str, bytes]] = []

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        arrivals.append((time.time(), request.headers.get("webhook-id", ""), body))
        return web.Response(text="ok")

    async def head(_: web.Request) -> web.Response:
        return web.Response()

    async def count(_: web.Request) -> web.Response:
        return web.Response(text=str(len(arrivals)))

    async def dump(_: web.Application) -> None:
        with out.open("w", encoding="utf-8") as f:
            for at, webhook_id, body in arrivals:
                user_id = None
                if body.startswith(b"{") and b'"user_id"' in body[:400]:
                    user_id = json.loads(body).get("user_id")
                f.write(json.dumps({"at": at, "id": webhook_id, "user_id": user_id}) + "\n")

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_get("/count", count)
    app.router.add_route("HEAD", "/{tail:.*}", head)
    app.router.add_post("/{tail:.*}", receive)
    app.on_cleanup.append(dump)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    web.run_app(
        build(args.out), host="127.0.0.1", port=args.port, access_log=None, print=lambda *_: None
    )


if __name__ == "__main__":
    main()
