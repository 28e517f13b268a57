"""Custom function calls as gradsheet serves them (``POST /xlwings/custom-functions-call``, in place of
xlwings Server's own route, which it then calls): no single call can stall the others.

xlwings Server parses the call's JSON and converts every argument on the server's event loop, before the
function runs, so one cell with a 1000 x 1000 range held up every request (and every stream) for a minute,
and 3000 x 3000 hung the server. Here the body is parsed in a worker thread, every range is measured
before anything converts it (more than ``MAX_RANGE_CELLS`` cells: the cell gets a message instead), and
the call itself, conversion included, runs in a worker thread with its own event loop.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import HTTPException, Request
from fastapi.routing import APIRoute
from xlwings_server import dependencies as dep
from xlwings_server.routers import xlwings as xlwings_routes

from excel_addin import cells
from excel_addin.server.options import MAX_RANGE_CELLS


def parse(body: bytes) -> dict[str, Any]:
    """The call's JSON: an object with a function name and a list of arguments; 400 otherwise."""
    try:
        data = json.loads(body)
    except ValueError:
        raise HTTPException(status_code=400, detail="the call is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("func_name"), str):
        raise HTTPException(status_code=400, detail="the call names no function")
    if not isinstance(data.get("args"), list):
        raise HTTPException(status_code=400, detail="the call's arguments must be a list")
    return data


def cell_count(value: Any, limit: int) -> int:
    """How many cells an argument holds (a range arrives as a list of rows); counting stops past ``limit``."""
    if not isinstance(value, list):
        return 1
    count = 0
    for row in value:
        count += len(row) if isinstance(row, list) else 1
        if count > limit:
            break
    return count


def oversized(data: dict[str, Any], module: Any) -> str | None:
    """The message for a call with a range larger than MAX_RANGE_CELLS (None: every range fits)."""
    function = getattr(module, data["func_name"], None)
    names = [a["name"] for a in getattr(function, "__xlfunc__", {}).get("args", [])]
    for index, value in enumerate(data["args"]):
        if cell_count(value, MAX_RANGE_CELLS) > MAX_RANGE_CELLS:
            name = names[index] if index < len(names) else f"argument {index + 1}"
            return cells.excel_error(
                ValueError(
                    f"{name}: a range of at most {MAX_RANGE_CELLS:,} cells, please (this one is larger)"
                )
            )
    return None


async def custom_functions_call(request: Request, current_user: dep.User, redis_client: dep.RedisClient):
    """A cell's call: parsed and measured off the event loop, then run in a worker thread."""
    data = await asyncio.to_thread(parse, await request.body())
    refused = oversized(data, xlwings_routes.custom_functions)
    if refused is not None:
        return {"result": [[refused]]}
    call = xlwings_routes.custom_functions_call(
        current_user=current_user, redis_client=redis_client, data=data
    )
    return await asyncio.to_thread(asyncio.run, call)


def serve_calls(fastapi_app: Any, app_path: str = "") -> None:
    """Answer custom function calls here, before xlwings Server's route of the same URL."""
    path = f"{app_path}/xlwings/custom-functions-call"
    route = APIRoute(path, custom_functions_call, methods=["POST"], name="custom_functions_call")
    fastapi_app.router.routes.insert(0, route)
