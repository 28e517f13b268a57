"""gradsheet's own HTTP routes besides xlwings Server's, each for the signed-in user (xlwings Server's
``User`` dependency: the same sign-in as the cells and buttons):

* ``GET /gradsheet/status?workbook=<id>``: where the user's workbook's training stands and how busy the
  server is, for the task pane;
* ``GET /gradsheet/class`` and ``POST /gradsheet/class/stop``: a teacher's view of the class (every run
  queued, training or done, each student's last accuracy) and Stop for any run; 403 for anyone else.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel
from xlwings_server.dependencies import User

from excel_addin.server import messages
from excel_addin.server.auth import identity
from excel_addin.server.functions import progress_view
from excel_addin.server.runs import RunKey, run_book
from excel_addin.server.workbook import check_id

router = APIRouter(prefix="/gradsheet")


def _workbook_id(workbook: str | None) -> str:
    try:
        return check_id(workbook)
    except ValueError as error:
        raise HTTPException(status_code=400, detail=str(error)) from None


@router.get("/status")
async def status(user: User, workbook: str | None = None) -> dict:
    """Where the user's workbook's training stands and how busy the server is: ``{"status", "progress",
    "queue", "epochs", "user", "teacher", "server": {"running", "queued", "slots"}}``. Without a workbook
    id: the server's counts and who is signed in."""
    owner = identity(user)
    counts = await asyncio.to_thread(lambda: run_book().counts())  # the first use makes the book: seconds
    me = {"user": owner.name, "teacher": owner.teacher, "server": counts}
    if not workbook:
        return {"status": "", "progress": None, "queue": None, "epochs": 0, **me}
    state = await asyncio.to_thread(progress_view, owner, _workbook_id(workbook))
    return {**state.summary(), **me}


def _teacher(user) -> None:
    if not identity(user).teacher:
        raise HTTPException(status_code=403, detail="only a teacher sees the class")


@router.get("/class")
async def class_overview(user: User) -> dict:
    """The class as a teacher sees it: every workbook's run (queued, training, done), newest first."""
    _teacher(user)
    rows = await asyncio.to_thread(lambda: run_book().overview())
    return {"runs": rows, "server": await asyncio.to_thread(lambda: run_book().counts())}


class StopRequest(BaseModel):
    owner: str
    workbook: str


@router.post("/class/stop")
async def class_stop(user: User, request: StopRequest) -> dict:
    """A teacher's Stop: any student's run, waiting or training."""
    _teacher(user)
    key = RunKey(_safe_owner(request.owner), _workbook_id(request.workbook))
    text = await asyncio.to_thread(lambda: run_book().stop(key))
    return {"status": messages.for_user(text)}


def _safe_owner(owner: str) -> str:
    """A user id as the run book names folders (the same rule as workbook ids); 400 otherwise."""
    return _workbook_id(owner)
