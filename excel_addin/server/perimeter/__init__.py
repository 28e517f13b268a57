"""The server's perimeter: what every request passes before gradsheet's code (issue 24).

``install`` wraps xlwings Server's ASGI app (socket.io -> CORS -> FastAPI) from the outside in:

1. ``forwarded.ForwardedHeaders``: X-Forwarded-* believed from the configured proxy only, dropped otherwise;
2. ``hosts.TrustedHosts``: only requests for this server's names (DNS rebinding gets 400);
3. ``body.BodyLimit``: bodies over their limit refused before they are read (413);
4. ``origin.SameOriginGuard``: browser requests from other sites refused (403);
5. ``rate.RateLimit``: per-client rates for cell calls, buttons and gradsheet's routes (429);

and, inside FastAPI, replaces xlwings Server's static files with ``static.FolderStaticFiles``, which cannot
leave its folders, and xlwings' per-cell Pyodide probe with ``conversion.never_jsnull``. Every refusal has
the same shape (``refusal.refuse``). The settings are ``options.PERIMETER_SETTINGS``.
"""

from __future__ import annotations

from collections.abc import Sequence

from excel_addin.server.options import PERIMETER_SETTINGS, PerimeterOptions, server_names
from excel_addin.server.perimeter.body import BodyLimit, BodyRule
from excel_addin.server.perimeter.conversion import skip_pyodide_probe
from excel_addin.server.perimeter.forwarded import ForwardedHeaders
from excel_addin.server.perimeter.hosts import TrustedHosts
from excel_addin.server.perimeter.origin import SameOriginGuard
from excel_addin.server.perimeter.rate import RateGroup, RateLimit
from excel_addin.server.perimeter.static import replace_static_mount


def install(app, fastapi_app, settings, options: PerimeterOptions, own_prefixes: Sequence[str] = ()):
    """The ASGI app to serve: ``app`` (xlwings Server's) inside the perimeter. ``fastapi_app`` is the FastAPI
    app within (its static mount is replaced), ``settings`` xlwings Server's (app path, hostname, CORS
    origins, auth providers), ``own_prefixes`` the path prefixes of gradsheet's own routes (rate-limited
    with the cell calls)."""
    replace_static_mount(fastapi_app)
    skip_pyodide_probe()
    xlwings_path = f"{settings.app_path}/xlwings"
    calls = RateGroup("calls", (f"{xlwings_path}/custom-functions-call", *own_prefixes), options.call_rates)
    buttons = RateGroup("buttons", (f"{xlwings_path}/custom-scripts-call/",), options.button_rates)
    stack = RateLimit(app, (calls, buttons), options.rate_storage, by_token=bool(settings.auth_providers))
    names = [name for name in (settings.hostname, *options.allowed_hosts) if name]
    stack = SameOriginGuard(stack, names, settings.cors_allow_origins)
    button_rule = BodyRule(options.max_button_body, "a button", PERIMETER_SETTINGS["max_button_body"].flag)
    call_rule = BodyRule(
        options.max_call_body, "a cell function call", PERIMETER_SETTINGS["max_call_body"].flag
    )
    stack = BodyLimit(stack, buttons.prefixes[0], button=button_rule, other=call_rule)
    stack = TrustedHosts(stack, server_names(settings.hostname, options.allowed_hosts))
    return ForwardedHeaders(stack, options.proxies)


__all__ = ["install"]
