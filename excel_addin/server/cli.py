"""The command line of ``python -m excel_addin.server``: serve gradsheet's Office add-in (https on
127.0.0.1:8000).

Excel loads add-ins over https only, so the server needs a certificate that the machine running Excel
trusts: mkcert makes one (see ``CERTIFICATE_HELP``). ``--http`` serves plain http, for running behind a
reverse proxy that serves https. ``--shared`` makes a classroom server: it listens on every interface, and
paths in cells and settings must stay inside its runs folder, and everyone signs in (``--auth``: class
codes by default, see ``python -m excel_addin.server class --help``); ``--max-trainings`` sets how many
trainings run at once (the rest wait in a queue). ``--redis URL`` is the distributed mode: the queue in
Redis, trainings on training workers (``python -m excel_addin.worker --redis URL``), and ``--workers N``
web processes (docs/classroom.md). The server prints the manifest's URL to sideload in Excel.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

from excel_addin.server.auth.providers import describe as sign_in_line
from excel_addin.server.options import (
    AUTH_PROVIDERS,
    AUTH_PROVIDERS_ENV,
    CAPS,
    DEFAULT_RUNS,
    LICENSE_ENV,
    LICENSE_HINT,
    LOOPBACK_HOSTS,
    NO_AUTH,
    PERIMETER_SETTINGS,
    REDIS_ENV,
    SHARED_AUTH,
    Options,
    PerimeterOptions,
    Setting,
    auth_providers,
    class_file_for,
    server_names,
)
from excel_addin.slots import TRAININGS_PER_GPU
from ml.cli import Parser, whole

CERT_FILE, KEY_FILE = "localhost+2.pem", "localhost+2-key.pem"  # what `mkcert localhost 127.0.0.1 ::1` writes
CERTIFICATE_HELP = f"""\
Excel only loads add-ins over https. Make a certificate that this machine trusts, with mkcert, once:
  install mkcert   Windows: winget install FiloSottile.mkcert   (or: choco install mkcert)
                   macOS:   brew install mkcert nss
                   Debian:  sudo apt install mkcert libnss3-tools
  mkcert -install  (trusts mkcert's own certificate authority on this machine)
  mkcert -cert-file certs/{CERT_FILE} -key-file certs/{KEY_FILE} localhost 127.0.0.1 ::1
Or pass --cert FILE --key FILE, or --http behind a proxy that serves https.

A shared server's class list (who signs in with which code): python -m excel_addin.server class --help"""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m excel_addin.server",
        description="Serve gradsheet's Office add-in (cell functions, task pane, training) for Excel on "
        "Windows, macOS and the web.",
        epilog=CERTIFICATE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _listening(parser.add_argument_group("where it listens"))
    _class(parser.add_argument_group("who uses it"))
    _trainings(parser.add_argument_group("trainings"))
    perimeter = parser.add_argument_group("perimeter", "what every request passes first (docs/security.md)")
    for name, setting in PERIMETER_SETTINGS.items():
        add_setting(perimeter, name, setting)
    return parser


def _listening(group) -> None:
    group.add_argument("--host", help="address to listen on (default 127.0.0.1; with --shared 0.0.0.0)")
    group.add_argument("--port", type=whole(1), default=8000, help="port (default 8000)")
    group.add_argument(
        "--certs", type=Path, default=Path("certs"), help=f"folder with {CERT_FILE} and {KEY_FILE}"
    )
    group.add_argument("--cert", type=Path, help="certificate file (PEM), instead of --certs")
    group.add_argument("--key", type=Path, help="its private key (PEM)")
    group.add_argument(
        "--http", action="store_true", help="plain http, behind a reverse proxy that serves https"
    )
    group.add_argument(
        "--hostname",
        help="NAME[:PORT] Excel reaches this server at, for the manifest (default: as requested)",
    )
    group.add_argument(
        "--workers", type=whole(1), default=1, help="web processes (default 1; more needs --redis)"
    )


def _class(group) -> None:
    group.add_argument(
        "--runs", type=Path, default=Path(DEFAULT_RUNS), help=f"runs folder (default {DEFAULT_RUNS})"
    )
    group.add_argument(
        "--shared",
        action="store_true",
        help="classroom server: every interface, sign-in, each user's paths confined to their own folder",
    )
    group.add_argument(
        "--auth",
        choices=(*AUTH_PROVIDERS, NO_AUTH),
        help=f"how users sign in (default: ${AUTH_PROVIDERS_ENV}, else {SHARED_AUTH} with --shared and "
        f"{NO_AUTH} without)",
    )
    group.add_argument(
        "--class-file", type=Path, help="the class list of --auth classtoken (default: beside --runs)"
    )


def _trainings(group) -> None:
    group.add_argument(
        "--max-trainings",
        type=whole(1),
        help=f"trainings at once (default: {TRAININGS_PER_GPU} per GPU, one on a machine without a GPU)",
    )
    group.add_argument(
        "--threads", type=whole(0), default=0, help="CPU threads per training (default: the cores shared)"
    )
    for name, (_, shared_default, what) in CAPS.items():
        flag = "--" + name.replace("_", "-")
        group.add_argument(
            flag, type=whole(1), help=f"{what} (default: {shared_default:,} with --shared, else no cap)"
        )
    group.add_argument(
        "--redis",
        metavar="URL",
        default=os.environ.get(REDIS_ENV) or None,
        help=f"distributed mode: the queue, runs and socket.io messages in this Redis (redis://HOST:6379/0; "
        f"default ${REDIS_ENV}); trainings run on: python -m excel_addin.worker --redis URL",
    )


def add_setting(parser, name: str, setting: Setting) -> None:
    """The flag of ``setting`` (its value checked by the setting's own parser), stored as ``name``."""
    default = f" (default: {setting.default})" if setting.default else ""
    parser.add_argument(
        setting.flag,
        dest=name,
        metavar=setting.metavar,
        type=setting.checked,
        action="append" if setting.several else "store",
        help=setting.help + default,
    )


def setting_env(args: argparse.Namespace, settings: dict[str, Setting]) -> dict[str, str]:
    """The environment variables that the given flags of ``settings`` set (several values comma-joined)."""
    env = {}
    for name, setting in settings.items():
        given = getattr(args, name)
        if given:
            env[setting.env] = ",".join(given) if setting.several else given
    return env


def certificate(args: argparse.Namespace) -> tuple[Path, Path] | None:
    """The certificate and key to serve https with; exits with a message naming what is missing."""
    if args.http:
        return None
    cert, key = args.cert or args.certs / CERT_FILE, args.key or args.certs / KEY_FILE
    missing = [str(path) for path in (cert, key) if not path.is_file()]
    if missing:
        sys.exit(f"gradsheet server: no certificate: {' and '.join(missing)} not found.\n{CERTIFICATE_HELP}")
    return cert, key


def public_name(args: argparse.Namespace, host: str) -> str:
    """The NAME[:PORT] Excel reaches this server at (the name the certificate covers, not 0.0.0.0)."""
    if args.hostname:
        return args.hostname
    name = "localhost" if host in LOOPBACK_HOSTS else socket.getfqdn()
    return f"{name}:{args.port}"


def manifest_url(args: argparse.Namespace, host: str) -> str:
    """Where Excel gets the manifest."""
    return f"{'http' if args.http else 'https'}://{public_name(args, host)}/manifest.xml"


def perimeter_env(args: argparse.Namespace, host: str) -> dict[str, str]:
    """The perimeter's environment from the flags; the name of the manifest is always an allowed host."""
    env = setting_env(args, PERIMETER_SETTINGS)
    allowed = PERIMETER_SETTINGS["allowed_hosts"].env
    names = [os.environ.get(allowed, ""), env.get(allowed, ""), public_name(args, host)]
    env[allowed] = ",".join(name for name in names if name)
    storage = PERIMETER_SETTINGS["rate_storage"].env
    if args.redis and not env.get(storage) and not os.environ.get(storage):
        env[storage] = args.redis  # every web process counts in the same Redis
    return env


def options_of(args: argparse.Namespace) -> Options:
    """The server's options from its command line (ValueError for a bad combination, e.g. sign-in)."""
    runs = args.runs.expanduser().resolve()
    auth = auth_providers(args.auth or os.environ.get(AUTH_PROVIDERS_ENV), args.shared)
    class_file = class_file_for(runs, args.class_file)
    caps = {name: getattr(args, name) for name in CAPS}
    return Options(
        runs,
        args.shared,
        args.max_trainings,
        args.threads,
        auth=auth,
        class_file=class_file,
        redis=args.redis or None,
        **caps,
    )


def configure(args: argparse.Namespace, host: str) -> tuple[Options, PerimeterOptions, str]:
    """Check the options and put them into the environment that xlwings Server and gradsheet read; the
    options, the perimeter's and the sign-in line. Exits with a message naming what is wrong."""
    if not os.environ.get(LICENSE_ENV):
        sys.exit(f"gradsheet server: xlwings Server needs a licence key: {LICENSE_HINT}.")
    perimeter = perimeter_env(args, host)
    try:
        options = options_of(args)
        if args.workers > 1 and not options.redis:
            raise ValueError("--workers needs --redis URL (the web processes share the queue there)")
        Options.from_env(options.to_env())  # the same checks as a server configured by its environment
        checked = PerimeterOptions.from_env({**os.environ, **perimeter})
        signin = sign_in_line(options)
        options.runs.mkdir(parents=True, exist_ok=True)
    except (ValueError, OSError) as error:
        sys.exit(f"gradsheet server: {error}")
    os.environ.update({**options.to_env(), **perimeter})
    if args.hostname:
        os.environ["XLWINGS_HOSTNAME"] = args.hostname
    return options, checked, signin


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["class"]:
        from excel_addin.server.auth.cli import main as class_main

        return class_main(argv[1:])
    args = build_parser().parse_args(argv)
    host = args.host or ("0.0.0.0" if args.shared else "127.0.0.1")
    tls = certificate(args)
    options, checked, signin = configure(args, host)
    import uvicorn

    from excel_addin.server.asgi import app  # configures xlwings Server from the environment set above

    print(f"gradsheet add-in server: runs in {options.runs}. Manifest for Excel: {manifest_url(args, host)}")
    print(signin)
    names = ", ".join(sorted(server_names(args.hostname, checked.allowed_hosts)))
    print(f"Answers to: {names} (another name: --allowed-host NAME)")
    if options.redis:
        print(redis_report(options.redis, args.workers))
        if args.max_trainings:
            print("Note: --max-trainings does nothing with --redis: the training workers' --slots decide")
    sys.stdout.flush()
    ssl = {"ssl_certfile": str(tls[0]), "ssl_keyfile": str(tls[1])} if tls else {}
    # proxy_headers off: the perimeter believes forwarded headers from --proxy only (uvicorn's default
    # believes them from 127.0.0.1, i.e. from any local process). A websocket message (socket.io's) is
    # held to the cell calls' body limit: uvicorn would take 16 MiB per message, 32 messages queued.
    perimeter_args = {"proxy_headers": False, "ws_max_size": checked.max_call_body}
    served = app if args.workers == 1 else "excel_addin.server:app"  # each web process imports it
    uvicorn.run(
        served, host=host, port=args.port, log_level="warning", workers=args.workers, **perimeter_args, **ssl
    )
    return 0


def redis_report(url: str, workers: int) -> str:
    """What the distributed mode starts with: the web processes, and whether Redis answers now."""
    from excel_addin import status_line
    from excel_addin.jobs import keys

    where = f"{workers} web process(es), queue and runs in Redis at {keys.shown_url(url)}"
    try:
        keys.connect(url).ping()
    except keys.redis_errors() as error:
        return f"{where}. Warning: {status_line.queue_unreachable(keys.describe(error))}"
    return f"{where}. Trainings run on: python -m excel_addin.worker --redis URL"
