"""HTTP JSON API of a trained run (FastAPI + uvicorn; ``pip install "graphrec[serve]"``).

Endpoints (OpenAPI page at ``/docs``, schema at ``/openapi.json``):

* ``GET  /health`` — model, sizes, run directory;
* ``POST /recommend`` — ``{"user", "k", "exclude_seen", "candidates", "unknown", "new_items"}``
  (``new_items``: ``{raw id: text}`` of items not in the training data, ranked with the
  catalogue; text-capable models only, else 422);
* ``POST /recommend/new-user`` — ``{"items", "k", "exclude_seen", "candidates"}`` (fold-in);
* ``POST /similar-items`` — ``{"item", "k"}``;
* ``POST /explain`` — ``{"user"}`` or ``{"items"}`` (a new user's), optional ``"targets"``, ``"k"``.

Bad input never gets a 500: unknown ids answer 404, invalid fields 422 (naming the
field), bodies over ``max_body_bytes`` 413, each with ``{"detail": ...}``.
``/recommend``, ``/recommend/new-user`` and ``/similar-items`` cost well under a
millisecond per request on catalogues of this size (k and the id lists are bounded), so
they run on the event loop itself: handing each to a worker thread costs more than the
request and, with 32 in flight on 2 cores, thrashes the GIL (measured by
``benchmarks/serve_load.py``).  ``/explain`` and ``/recommend`` with ``new_items`` (their
texts are encoded) are heavier and run in the thread pool.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Annotated, Literal

from graphrec.errors import GraphrecError
from graphrec.inference.explain import explain
from graphrec.inference.recommender import InvalidRequestError, TrainedRecommender, UnknownIdError
from graphrec.optional import available, require

#: most new items (with their texts) one request may carry, and the longest text
MAX_NEW_ITEMS = 1000
MAX_TEXT_CHARS = 20_000

if available("fastapi") and available("uvicorn"):
    import uvicorn
    from fastapi import FastAPI, HTTPException
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, Field, StringConstraints

    ItemText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT_CHARS)]
    NewItemId = Annotated[str, StringConstraints(min_length=1, max_length=1000)]
else:  # the rest of graphrec works without the serve extra; require_server() explains
    BaseModel = object  # type: ignore[assignment,misc]

    def Field(*args, **kwargs):  # type: ignore[no-redef]  # noqa: N802
        return None

    ItemText = NewItemId = str  # type: ignore[misc]

#: default limit of a request body (413 beyond it)
MAX_BODY_BYTES = 1 << 20
#: most raw ids one request may carry
MAX_IDS = 10_000


def require_server() -> None:
    """A clear error when the ``serve`` extra is not installed."""
    require("fastapi", "graphrec serve")
    require("uvicorn", "graphrec serve")


class RecommendRequest(BaseModel):
    user: str = Field(..., min_length=1, max_length=1000, description="raw user id")
    k: int = Field(10, ge=1, description="list length")
    exclude_seen: bool = Field(True, description="drop the user's training items")
    candidates: list[str] | None = Field(
        None, max_length=MAX_IDS, description="raw item ids to choose from"
    )
    unknown: Literal["error", "popularity"] = Field(
        "error", description="unknown user: 404, or the popular items"
    )
    new_items: dict[NewItemId, ItemText] | None = Field(
        None,
        max_length=MAX_NEW_ITEMS,
        description="{raw id: text} of items not in the training data, ranked with the "
        "catalogue (text-capable models: alpharec, text_ease)",
    )


class NewUserRequest(BaseModel):
    items: list[str] = Field(
        ..., max_length=MAX_IDS, description="raw ids of the items the new user interacted with"
    )
    k: int = Field(10, ge=1)
    exclude_seen: bool = True
    candidates: list[str] | None = Field(None, max_length=MAX_IDS)
    unknown_items: Literal["error", "ignore"] = Field(
        "error", description="unknown item ids: 404, or skip them"
    )


class SimilarItemsRequest(BaseModel):
    item: str = Field(..., min_length=1, max_length=1000)
    k: int = Field(10, ge=1)


class ExplainRequest(BaseModel):
    user: str | None = Field(None, max_length=1000, description="a known user (or give items)")
    items: list[str] | None = Field(
        None, max_length=MAX_IDS, description="a new user's items (or give user)"
    )
    targets: list[str] | None = Field(
        None, max_length=1000, description="items to explain; default the top-k"
    )
    k: int = Field(10, ge=1)
    top: int = Field(3, ge=1, le=100, description="contributing items per explained item")


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: 413 for bodies over ``limit`` bytes (declared or streamed)."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await _send_json(send, 413, {"detail": f"request body over {self.limit} bytes"})
        received = 0

        async def limited():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await _send_json(send, 413, {"detail": f"request body over {self.limit} bytes"})


async def _send_json(send, status: int, body: dict) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def create_app(
    rec: TrainedRecommender, max_k: int = 1000, max_body_bytes: int = MAX_BODY_BYTES
) -> FastAPI | BodyLimit:
    """The ASGI application serving ``rec`` (FastAPI, behind the body-size limit when one is set)."""
    require_server()
    rec.scorer()  # propagation and embeddings now, not in the first request
    app = FastAPI(
        title="graphrec",
        version="1",
        description=f"Recommendations of run {rec.run_dir} "
        f"({rec.model.name}: {rec.n_users} users, {rec.n_items} items).",
    )

    @app.exception_handler(UnknownIdError)
    def unknown_id(request, err: UnknownIdError):
        return JSONResponse(status_code=404, content={"detail": str(err)})

    @app.exception_handler(GraphrecError)
    def bad_request(request, err: GraphrecError):
        return JSONResponse(status_code=422, content={"detail": str(err)})

    _add_routes(app, rec, max_k)
    return BodyLimit(app, max_body_bytes) if max_body_bytes else app


def _add_routes(app: FastAPI, rec: TrainedRecommender, max_k: int) -> None:
    """The endpoints of the module docstring, answering from ``rec``."""

    def check_k(k: int) -> int:
        if k > max_k:
            raise HTTPException(422, detail=f"k: at most {max_k}, got {k}")
        return k

    @app.get("/health")
    async def health() -> dict:
        return {
            "status": "ok",
            "model": rec.model.name,
            "users": rec.n_users,
            "items": rec.n_items,
            "run": None if rec.run_dir is None else str(rec.run_dir),
        }

    # The handlers return a JSONResponse of plain lists and floats: FastAPI's generic encoder
    # (jsonable_encoder) would walk them again for nothing.
    @app.post("/recommend")
    async def recommend(body: RecommendRequest) -> JSONResponse:
        def answer() -> dict:
            return rec.recommend(
                [body.user],
                k=check_k(body.k),
                exclude_seen=body.exclude_seen,
                candidates=body.candidates,
                unknown=body.unknown,
                new_items=body.new_items,
            )[0].to_dict()

        # new items' texts go through the sentence encoder (milliseconds): off the event loop
        return JSONResponse(answer() if body.new_items is None else await run_in_threadpool(answer))

    @app.post("/recommend/new-user")
    async def new_user(body: NewUserRequest) -> JSONResponse:
        return JSONResponse(
            rec.recommend_for_items(
                body.items,
                k=check_k(body.k),
                exclude_seen=body.exclude_seen,
                candidates=body.candidates,
                unknown_items=body.unknown_items,
            ).to_dict()
        )

    @app.post("/similar-items")
    async def similar(body: SimilarItemsRequest) -> JSONResponse:
        result = rec.similar_items(body.item, k=check_k(body.k)).to_dict()
        return JSONResponse(
            {"item": body.item, "items": result["items"], "scores": result["scores"]}
        )

    @app.post("/explain")
    def explain_items(body: ExplainRequest) -> dict:
        if (body.user is None) == (body.items is None):
            raise InvalidRequestError(
                "give exactly one of `user` (a known user) or `items` (a new user's items)"
            )
        explanations = explain(
            rec,
            user=body.user,
            basket=body.items,
            items=body.targets,
            k=check_k(body.k),
            top=body.top,
        )
        return {"user": body.user, "explanations": explanations}


def run(
    rec: TrainedRecommender,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_k: int = 1000,
    quiet: bool = False,
) -> None:
    """Serve ``rec`` until interrupted."""
    uvicorn.run(
        create_app(rec, max_k=max_k), host=host, port=port, log_level="warning" if quiet else "info"
    )


__all__ = ["MAX_BODY_BYTES", "create_app", "require_server", "run"]


@contextlib.contextmanager
def running_server(
    rec: TrainedRecommender,
    host: str = "127.0.0.1",
    port: int = 0,
    max_k: int = 1000,
    start_timeout: float = 30.0,
) -> Iterator[str]:
    """Serve ``rec`` from a background thread (a notebook, a test); yields the base URL, stops on exit.

    ``port`` 0 picks a free port.  Raises ``RuntimeError`` if the server has not started within ``start_timeout`` s.
    """
    require_server()
    if port == 0:
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(rec, max_k=max_k), host=host, port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        server.should_exit = True
        raise RuntimeError(f"the server on {host}:{port} did not start within {start_timeout:g} s")
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
