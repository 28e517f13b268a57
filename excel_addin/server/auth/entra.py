"""Microsoft Entra ID (xlwings Server's own ``entraid`` provider): the settings it needs, checked before
the server starts, and the user id made from a token's claims. See docs/security.md, "Signing in"."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from excel_addin.server.auth import names

CLIENT_ID_ENV = "XLWINGS_AUTH_ENTRAID_CLIENT_ID"
TENANT_ID_ENV = "XLWINGS_AUTH_ENTRAID_TENANT_ID"
MULTITENANT_ENV = "XLWINGS_AUTH_ENTRAID_MULTITENANT"
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
WHERE = "Microsoft Entra admin center > App registrations > (the add-in's registration) > Overview"
HELP = "see docs/security.md, 'Signing in'"


def settings_problems(env: Mapping[str, str]) -> list[str]:
    """What is missing or wrong in the environment for signing in with Microsoft Entra ID."""
    problems = []
    for name, what in ((CLIENT_ID_ENV, "Application (client) ID"), (TENANT_ID_ENV, "Directory (tenant) ID")):
        value = env.get(name, "").strip().strip('"')
        if not value:
            problems.append(f"set {name} to the {what} ({WHERE})")
        elif not GUID.fullmatch(value):
            problems.append(f"{name} must be the {what}, a GUID like 0a1b2c3d-..., got {value!r}")
    if env.get(MULTITENANT_ENV, "").strip().strip('"').lower() in ("1", "true", "yes", "on"):
        problems.append(
            f"unset {MULTITENANT_ENV}: with it, xlwings Server accepts accounts of any organisation, not "
            "only the school's"
        )
    return problems


def check_settings(env: Mapping[str, str]) -> None:
    """ValueError listing every problem of ``settings_problems``, if any."""
    problems = settings_problems(env)
    if problems:
        raise ValueError(f"signing in with Microsoft Entra ID needs: {'; '.join(problems)} ({HELP})")


def user_id(claims: Mapping[str, Any]) -> str | None:
    """The folder-safe user id of a token's claims: its object id (``oid``, a GUID), else its
    ``preferred_username`` made folder-safe; None if neither gives one."""
    oid = claims.get("oid")
    if isinstance(oid, str) and GUID.fullmatch(oid):
        return oid.lower()
    preferred = claims.get("preferred_username")
    made = names.slug(preferred) if isinstance(preferred, str) else ""
    return made if made and made not in names.RESERVED_IDS else None
