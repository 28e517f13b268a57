"""gradsheet's own HTTP route besides xlwings Server's: the task pane's short status, as JSON."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException

from excel_addin.server import progress, training
from excel_addin.server.workbook import check_id

router = APIRouter(prefix="/gradsheet")


@router.get("/status")
async def status(workbook: str | None = None) -> dict:
    """Where the workbook's training stands (no workbook: the server's latest run) and how busy the
    server is: ``{"status", "progress", "queue", "epochs", "server": {"running", "queued", "slots"}}``."""
    try:
        wid = None if not workbook else check_id(workbook)
    except ValueError as error:
        raise HTTPException(status_code=400, detail=str(error)) from None
    state = await asyncio.to_thread(progress.progress_of, wid)
    return {**state.summary(), "server": training.queue().counts()}
