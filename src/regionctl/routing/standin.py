"""A stand-in for a region's ui, for tests, benchmarks and demos of the global plane without the shop.

It answers ``/actuator/health`` (DOWN after ``POST /actuator/fail``, as the reference's chaos hook does, UP again
after ``POST /actuator/recover``), and a page that names its region. Run:
``python -m regionctl.routing.standin --region us-east-1 --host 127.0.1.1 --port 17000``.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse


def create_app(region: str) -> FastAPI:
    app = FastAPI(title=f"stand-in ui of {region}")
    state = {"healthy": True}

    @app.get("/actuator/health")
    def health() -> JSONResponse:
        up = state["healthy"]
        return JSONResponse({"status": "UP" if up else "DOWN", "region": region}, status_code=200 if up else 503)

    @app.post("/actuator/fail")
    def fail() -> dict[str, str]:
        state["healthy"] = False
        return {"status": "DOWN"}

    @app.post("/actuator/recover")
    def recover() -> dict[str, str]:
        state["healthy"] = True
        return {"status": "UP"}

    @app.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
    def home() -> str:
        return f"<!doctype html><title>shop</title><h1>Served by region {region}</h1>"

    @app.get("/whoami")
    def whoami(request: Request) -> dict[str, Any]:
        return {"region": region, "headers": dict(request.headers)}

    @app.post("/echo")
    async def echo(request: Request) -> Response:
        return Response(await request.body(), media_type=request.headers.get("content-type", "text/plain"))

    @app.get("/stream")
    def stream(chunks: int = 5) -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            for i in range(chunks):
                yield f"part {i} from {region}\n".encode()

        return StreamingResponse(parts(), media_type="text/plain")

    return app


def main(argv: Sequence[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="regionctl.routing.standin", description=__doc__)
    parser.add_argument("--region", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(create_app(args.region), host=args.host, port=args.port, http="httptools", loop="uvloop",
                log_level="warning", access_log=False, backlog=2048)


if __name__ == "__main__":
    main()
