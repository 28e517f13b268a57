"""Hand gradsheet's sign-in to xlwings Server: which providers (``XLWINGS_AUTH_PROVIDERS``, from
``options().auth``) and where it imports them from.

xlwings Server imports a provider as ``auth.<name>`` (from ``PROJECT_DIR`` or anything else on
``sys.path``) and falls back to ``xlwings_server.auth.<name>``. ``configure`` makes ``auth`` this package
(so no folder named ``auth`` in the current directory can supply a provider) and ``auth.classtoken``
gradsheet's provider; ``auth.entraid`` is then not found here and resolves to xlwings Server's own.
It runs before xlwings Server reads its settings (``asgi._configure``).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import MutableMapping

from excel_addin.server.auth import entra, roster
from excel_addin.server.auth.cli import ENROL
from excel_addin.server.options import AUTH_PROVIDERS_ENV, CLASS_TOKEN, ENTRA_ID, Options


def check(opts: Options, env: MutableMapping[str, str] = os.environ) -> None:
    """ValueError when a chosen provider lacks its settings (Entra ID: the app registration's ids)."""
    if ENTRA_ID in opts.auth:
        entra.check_settings(env)


def configure(opts: Options, env: MutableMapping[str, str] = os.environ) -> None:
    """Check the providers' settings, name the providers for xlwings Server (as the JSON list it reads)
    and register gradsheet's provider modules under the names it imports."""
    check(opts, env)
    if opts.auth:
        env[AUTH_PROVIDERS_ENV] = json.dumps(list(opts.auth))
    else:  # xlwings Server's default; and no "[]" for a shared server started from this process to inherit
        env.pop(AUTH_PROVIDERS_ENV, None)
    sys.modules["auth"] = importlib.import_module("excel_addin.server.auth")
    sys.modules[f"auth.{CLASS_TOKEN}"] = importlib.import_module(f"excel_addin.server.auth.{CLASS_TOKEN}")


def describe(opts: Options, env: MutableMapping[str, str] = os.environ) -> str:
    """How users sign in, in a line for the server's start; ValueError (naming the setting or file) when
    they could not: a provider's settings missing, the class list unreadable."""
    check(opts, env)
    if not opts.auth:
        return "Sign-in: none (one person: this computer's user)."
    ways = []
    if CLASS_TOKEN in opts.auth:
        active = sum(person.active for person in roster.load(opts.class_file).people.values())
        ways.append(f"class codes of {opts.class_file} ({active} active)")
        if not active:
            ways.append(f"nobody can sign in yet: {ENROL}")
    if ENTRA_ID in opts.auth:
        ways.append(f"Microsoft 365 accounts of the tenant {env.get(entra.TENANT_ID_ENV, '').strip()}")
    return f"Sign-in: {'; '.join(ways)}."
