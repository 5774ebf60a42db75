"""The reference every kit figure is compared with: a bare FastAPI hello world under the same uvicorn settings
as the services (`services.kit.serve.run_server`), with none of the kit (no middleware, metrics, logs or
tracing). Run as `python -m bench.reference_app PORT`."""

from __future__ import annotations

import sys

from fastapi import FastAPI

from services.kit.serve import run_server

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    run_server(app, host="127.0.0.1", port=int(sys.argv[1]))
