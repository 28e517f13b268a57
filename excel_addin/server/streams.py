"""Streaming cells (``TRAIN_PROGRESS``) over socket.io, each value to the user who asked and nobody else.

xlwings Server runs a streaming function as one task per *task key* (the client's ``<function>_<args>``)
and emits each value as ``xlwings:set-result-<task key>`` to every connected client, so every student
would receive every other student's progress (and learn their workbook ids), and two students with the
same formula would share one stream. gradsheet replaces its socket.io handlers with these:

* ``connect``: authenticates the socket as xlwings Server does, but keeps an unauthenticated one connected
  (its streaming cells then say how to sign in), and puts the socket in its user's room;
* ``xlwings:function-call``: runs the stream under a task key of the user's own (``<user>/<client key>``),
  with an emitter that sends each value to the user's room only, under the event name the client listens
  for, so the client's key (and the workbook id in it) never reaches another user;
* ``xlwings:cancel-task``: the same mapping, for the user's own keys only.

With a Redis message queue (several web processes), rooms span the processes.
"""

from __future__ import annotations

import logging
from typing import Any

import xlwings as xw
from xlwings.pro import udfs_officejs
from xlwings_server.dependencies import authenticate
from xlwings_server.models import CurrentUser

from excel_addin.server.auth import identity

logger = logging.getLogger(__name__)
SIGN_IN_TEXT = "#VALUE! sign in in the gradsheet pane"
# A user's live streaming cells on this web process at most: each polls its run twice a second, so a
# student opening thousands (one per made-up workbook id) would keep the server busy for everyone.
MAX_STREAMS_PER_USER = 50
TOO_MANY_TEXT = f"#VALUE! too many live cells: at most {MAX_STREAMS_PER_USER} TRAIN_PROGRESS cells per user"
RESULT_EVENT = "xlwings:set-result-"


def room(user_id: str) -> str:
    """The socket.io room of a user's sockets."""
    return f"user:{user_id}"


def streams_of(user_id: str) -> set[str]:
    """The server's task keys of the user's streams open on this web process (xlwings' own registry)."""
    prefix = own_key(user_id, "")
    return {key for key in udfs_officejs.task_key_to_sid_counts if key.startswith(prefix)}


def own_key(user_id: str, client_key: str) -> str:
    """The server's task key of a user's stream: nobody else's call can share it."""
    return f"{user_id}/{client_key}"


class UserEmitter:
    """What xlwings' streaming task emits through: to the user's room, under the client's event name."""

    def __init__(self, sio: Any, user_id: str, client_key: str):
        self.sio, self.room = sio, room(user_id)
        self.events = {RESULT_EVENT + own_key(user_id, client_key): RESULT_EVENT + client_key}

    async def emit(self, event: str, data: Any = None, **_ignored: Any) -> None:
        await self.sio.emit(self.events.get(event, event), data, room=self.room)


def install(sio: Any, custom_functions: Any) -> None:
    """Replace xlwings Server's socket.io handlers on ``sio`` with the per-user ones."""

    async def connect(sid, environ, auth):
        auth = auth if isinstance(auth, dict) else {}
        try:
            user = await authenticate(auth.get("token") or "", auth_provider=auth.get("provider") or None)
        except Exception as error:  # noqa: BLE001 - a wrong or missing token: connected, but nobody
            logger.info("socket %s: not signed in (%r)", sid, error)
            user = None
        await sio.save_session(sid, {"current_user": user})
        if user is not None:
            await sio.enter_room(sid, room(identity(user).id))

    async def function_call(sid, data):
        if not isinstance(data, dict) or not isinstance(data.get("task_key"), str) or "func_name" not in data:
            return
        client_key = data["task_key"]
        user = (await sio.get_session(sid)).get("current_user")
        if user is None:
            await sio.emit(RESULT_EVENT + client_key, {"result": [[SIGN_IN_TEXT]]}, to=sid)
            return
        user_id = identity(user).id
        mine = {**data, "task_key": own_key(user_id, client_key)}
        if mine["task_key"] not in streams_of(user_id) and len(streams_of(user_id)) >= MAX_STREAMS_PER_USER:
            await sio.emit(RESULT_EVENT + client_key, {"result": [[TOO_MANY_TEXT]]}, to=sid)
            return
        emitter = UserEmitter(sio, user_id, client_key)
        await xw.server.sio_custom_function_call(
            sid, mine, custom_functions, user, emitter, {CurrentUser: user}
        )

    async def cancel_task(sid, data):
        user = (await sio.get_session(sid)).get("current_user")
        client_key = data.get("task_key") if isinstance(data, dict) else None
        if user is not None and isinstance(client_key, str) and client_key:
            await xw.server.sio_cancel_task(sid, own_key(identity(user).id, client_key))

    sio.on("connect", connect)
    sio.on("xlwings:function-call", function_call)
    sio.on("xlwings:cancel-task", cancel_task)


# ---- the client side: xlwings' custom-functions code, as gradsheet serves it ------------------------------

# xlwings' client keys a stream subscription by task key and cell address, but Excel gives a streaming call
# no address, so a second cell with the same formula replaced the first one's subscription (which then
# stayed at "Waiting for stream..."). gradsheet's copy keys a subscription without an address by its
# invocation object instead.
_SUBSCRIPTION_ID = """function getStreamingSubscriptionId(taskKey, invocation) {
  return `${taskKey}::${invocation.address}`;
}"""
_PER_CELL_SUBSCRIPTION_ID = """// gradsheet: one subscription per cell
const gradsheetInvocationIds = new WeakMap();
let gradsheetInvocationCount = 0;
function getStreamingSubscriptionId(taskKey, invocation) {
  if (invocation.address) return `${taskKey}::${invocation.address}`;
  if (!gradsheetInvocationIds.has(invocation)) {
    gradsheetInvocationIds.set(invocation, ++gradsheetInvocationCount);
  }
  return `${taskKey}::#${gradsheetInvocationIds.get(invocation)}`;
}"""


def per_cell_streams(js: str) -> str:
    """xlwings' custom-functions code with a subscription per cell; RuntimeError when the code is not the
    one this was written for (an upgrade of xlwings Server must be looked at)."""
    if js.count(_SUBSCRIPTION_ID) != 1:
        raise RuntimeError(
            "xlwings Server's custom-functions code changed: check excel_addin/server/streams.py"
        )
    return js.replace(_SUBSCRIPTION_ID, _PER_CELL_SUBSCRIPTION_ID)


def serve_per_cell_streams(fastapi_app: Any, app_path: str = "") -> None:
    """Serve xlwings' custom-functions code through ``per_cell_streams``, at its URLs (routes put first,
    so they answer before xlwings Server's, under the same route name)."""
    from fastapi.responses import Response
    from fastapi.routing import APIRoute
    from xlwings_server.routers import xlwings as xlwings_routes

    async def custom_functions_code() -> Response:
        original = await xlwings_routes.custom_functions_code()
        return Response(per_cell_streams(original.body.decode("utf-8")), media_type="text/javascript")

    for suffix in ("", ".js"):
        path = f"{app_path}/xlwings/custom-functions-code{suffix}"
        route = APIRoute(path, custom_functions_code, methods=["GET"], name="custom_functions_code")
        fastapi_app.router.routes.insert(0, route)
