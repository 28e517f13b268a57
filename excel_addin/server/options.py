"""The add-in server's own settings: where runs go, whether it is shared, how many trainings at once, the
teacher's caps, who may sign in and where the class list is, the perimeter's hosts, proxies, body sizes and
rate limits (and the one xlwings Server setting that must come from outside, the licence key).

They come from environment variables, so ``python -m excel_addin.server`` (which sets them from its
options) and ``uvicorn excel_addin.server:app`` behind a proxy configure the same way. Each variable and
its default is named here once; a ``Setting`` also names its command-line flag and help, from which
``cli`` makes the flag.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import limits

from ml.config import N_TRAIN_IMAGES

LICENSE_ENV = "XLWINGS_LICENSE_KEY"
LICENSE_HINT = (
    f"set {LICENSE_ENV}=noncommercial (xlwings Server is PolyForm Noncommercial, which covers educational "
    "use) or to your xlwings licence key"
)
RUNS_ENV = "GRADSHEET_SERVER_RUNS"
SHARED_ENV = "GRADSHEET_SERVER_SHARED"
MAX_TRAININGS_ENV = "GRADSHEET_MAX_TRAININGS"
THREADS_ENV = "GRADSHEET_TRAINING_THREADS"
# The distributed mode: the queue, the runs' state and socket.io's messages in this Redis (docs/classroom.md)
REDIS_ENV = "GRADSHEET_REDIS_URL"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
DEFAULT_RUNS = "runs/server"
# Sign-in: xlwings Server's own setting names the auth providers (a JSON list; a comma-separated list is
# accepted here and rewritten as JSON); gradsheet knows two of them. No provider: the one-person server.
AUTH_PROVIDERS_ENV = "XLWINGS_AUTH_PROVIDERS"
CLASS_TOKEN, ENTRA_ID = "classtoken", "entraid"
AUTH_PROVIDERS = (CLASS_TOKEN, ENTRA_ID)
SHARED_AUTH = CLASS_TOKEN  # what --shared signs in with unless told otherwise
NO_AUTH = "none"  # --auth none: no sign-in (refused for a shared server)
# The class list (names, roles, hashes of class codes): beside the runs folder, not inside it, so that no
# cell or script that reads files of the runs folder can reach it.
CLASS_FILE_ENV = "GRADSHEET_CLASS_FILE"
CLASS_FILE_NAME = "class.json"
# A cell function takes a range of at most this many cells (CLASSIFY_PIXELS needs 784), measured before
# anything converts it: a 1000 x 1000 range held up every other request for a minute.
MAX_RANGE_CELLS = 10_000


# The teacher's caps of a shared server: option -> (environment variable, the shared server's default, what
# it caps). A one-person server has none unless set. Defaults for a class of 30 on one machine: each run at
# most 30 epochs and 20 minutes, and the queue as long as the class (one run per student, running or
# waiting).
CAPS = {
    "max_queue": ("GRADSHEET_MAX_QUEUE", 30, "trainings waiting in the queue at most"),
    "max_minutes": ("GRADSHEET_MAX_MINUTES", 20, "minutes a run may train before it is stopped"),
    "max_epochs": ("GRADSHEET_MAX_EPOCHS", 30, "epochs a run may ask for"),
    "max_images": ("GRADSHEET_MAX_IMAGES", N_TRAIN_IMAGES, "training images a run may use"),
}


@dataclass(frozen=True)
class Options:
    """``runs``: the folder holding one folder per user; ``shared``: a classroom server (sign-in, paths in
    cells and settings kept inside the user's folder, the caps of ``CAPS``); ``max_trainings``: trainings at
    once (None: ``TRAININGS_PER_GPU`` per GPU, one without a GPU); ``threads``: CPU threads per training (0:
    the cores shared among the trainings); ``max_*``: the caps (None: the mode's default); ``auth``: the
    xlwings auth providers users sign in with (none: the one local user); ``class_file``: the class list of
    the ``classtoken`` provider (None: CLASS_FILE_NAME beside the runs folder)."""

    runs: Path
    shared: bool = False
    max_trainings: int | None = None
    threads: int = 0
    max_queue: int | None = None
    max_minutes: int | None = None
    max_epochs: int | None = None
    max_images: int | None = None
    auth: tuple[str, ...] = ()
    class_file: Path | None = None
    redis: str | None = None  # the distributed mode's Redis URL (None: everything in this process)

    def __post_init__(self):
        if self.class_file is None:
            object.__setattr__(self, "class_file", default_class_file(self.runs))

    def cap(self, name: str) -> int | None:
        """A cap as it applies: its setting, else the shared server's default (a one-person server: none)."""
        value = getattr(self, name)
        return value if value is not None or not self.shared else CAPS[name][1]

    @staticmethod
    def from_env(env: Mapping[str, str] = os.environ) -> Options:
        """The options the environment sets (a bad number raises ValueError naming the variable)."""
        caps = {name: _count(env, variable, minimum=1) for name, (variable, _, _) in CAPS.items()}
        shared = env.get(SHARED_ENV, "").strip().lower() in ("1", "true", "yes", "on")
        runs = runs_folder(None, env)
        return Options(
            runs=runs,
            shared=shared,
            max_trainings=_count(env, MAX_TRAININGS_ENV, minimum=1),
            threads=_count(env, THREADS_ENV, minimum=0) or 0,
            auth=auth_providers(env.get(AUTH_PROVIDERS_ENV), shared),
            class_file=class_file_for(runs, None, env),
            **caps,
            redis=redis_url(env.get(REDIS_ENV, "")),
        )

    def to_env(self) -> dict[str, str]:
        """The environment variables that give these options (``from_env``'s inverse)."""
        env = {RUNS_ENV: str(self.runs), SHARED_ENV: "true" if self.shared else "false"}
        env[THREADS_ENV] = str(self.threads)
        env[AUTH_PROVIDERS_ENV] = json.dumps(list(self.auth))
        env[CLASS_FILE_ENV] = str(self.class_file)
        if self.max_trainings is not None:
            env[MAX_TRAININGS_ENV] = str(self.max_trainings)
        for name, (variable, _, _) in CAPS.items():
            if getattr(self, name) is not None:
                env[variable] = str(getattr(self, name))
        if self.redis:
            env[REDIS_ENV] = self.redis
        return env


def runs_folder(given: Path | None, env: Mapping[str, str] = os.environ) -> Path:
    """The runs folder: ``given`` (--runs), else RUNS_ENV, else DEFAULT_RUNS; absolute."""
    return Path(given or env.get(RUNS_ENV) or DEFAULT_RUNS).expanduser().resolve()


def default_class_file(runs: Path) -> Path:
    """Where the class list is unless set: beside the runs folder (``<runs>/../class.json``)."""
    return runs.parent / CLASS_FILE_NAME


def class_file_for(runs: Path, given: Path | None, env: Mapping[str, str] = os.environ) -> Path:
    """The class list: ``given`` (--class-file), else CLASS_FILE_ENV, else beside ``runs``; absolute."""
    chosen = given or env.get(CLASS_FILE_ENV, "").strip()
    return Path(chosen).expanduser().resolve() if chosen else default_class_file(runs)


def auth_providers(text: str | None, shared: bool) -> tuple[str, ...]:
    """The providers an ``XLWINGS_AUTH_PROVIDERS`` value names (a JSON list, or names separated by commas;
    ``none`` or ``[]``: no sign-in). Unset: SHARED_AUTH for a shared server, none otherwise. ValueError
    for a provider gradsheet does not know (xlwings Server's example ``custom`` provider accepts a fixed
    test token) and for a shared server without sign-in."""
    if text is None or not text.strip():
        return (SHARED_AUTH,) if shared else ()
    try:
        names = json.loads(text) if text.strip().startswith("[") else text.split(",")
    except json.JSONDecodeError:
        example = json.dumps([CLASS_TOKEN])
        raise ValueError(
            f"{AUTH_PROVIDERS_ENV} must be a JSON list such as {example}, got {text!r}"
        ) from None
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ValueError(f"{AUTH_PROVIDERS_ENV} must be a list of names, got {text!r}")
    chosen = tuple(dict.fromkeys(name.strip() for name in names if name.strip() not in ("", NO_AUTH)))
    unknown = [name for name in chosen if name not in AUTH_PROVIDERS]
    if unknown:
        raise ValueError(
            f"{AUTH_PROVIDERS_ENV}: unknown sign-in provider {unknown[0]!r}: gradsheet's server knows "
            f"{' and '.join(AUTH_PROVIDERS)} (or {NO_AUTH} for the one-person server)"
        )
    if shared and not chosen:
        raise ValueError(
            f"a shared server needs sign-in: {CLASS_TOKEN} (class codes, the default of --shared) or "
            f"{ENTRA_ID} (Microsoft 365 accounts), not {text!r}"
        )
    return chosen


def redis_url(text: str) -> str | None:
    """A Redis URL as given (None for none); ValueError naming the setting for something else."""
    text = text.strip()
    if not text:
        return None
    if not text.startswith(REDIS_SCHEMES):
        raise ValueError(f"{REDIS_ENV} (--redis) must be a URL such as redis://HOST:6379/0, got {text!r}")
    return text


def _count(env: Mapping[str, str], name: str, minimum: int) -> int | None:
    text = env.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < minimum:
        raise ValueError(f"{name} must be a whole number of at least {minimum}, got {text!r}")
    return int(text)


@functools.cache
def options() -> Options:
    """This server's options, read from the environment once."""
    return Options.from_env()


# ---- the perimeter (excel_addin.server.perimeter): each setting named once, with its flag ------------------

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")  # names every server answers to (this machine)
SIZE_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 2**10, "kib": 2**10, "m": 2**20, "mb": 2**20, "mib": 2**20}
RATE_STORAGE_SCHEMES = ("memory", "redis", "rediss")


@dataclass(frozen=True)
class Setting:
    """One server setting named once: its environment variable, its command-line flag, its default (text, as
    a user writes it) and its help. ``parse`` turns the text into the value (ValueError saying what is
    wrong). ``several``: the flag may be given more than once; the variable holds the values, comma-separated.
    """

    env: str
    flag: str
    default: str
    help: str
    parse: Callable[[str], Any]
    metavar: str
    several: bool = False

    def value(self, env: Mapping[str, str] = os.environ) -> Any:
        """The value ``env`` gives (the default when unset or empty); ValueError naming variable and flag."""
        text = env.get(self.env, "").strip() or self.default
        try:
            return self.parse(text)
        except ValueError as error:
            raise ValueError(f"{self.env} ({self.flag}): {error}") from None

    def checked(self, text: str) -> str:
        """``text`` if it parses (argparse's ``type``: a bad flag value is refused with the reason)."""
        self.parse(text)
        return text


def host_name(text: str) -> str:
    """A name the server is reached at, as the host part of a Host header: ``school.example`` from
    ``School.Example:8443``, ``[::1]`` from ``::1`` or ``[::1]:8000``; ValueError for anything else."""
    text = text.strip().lower()
    if text.startswith("[") or text.count(":") > 1:  # IPv6: [address]:port, [address] or a bare address
        address, _, port = text.removeprefix("[").partition("]") if text.startswith("[") else (text, "", "")
        try:
            address = ipaddress.IPv6Address(address).compressed
        except ValueError:
            raise ValueError(f"{text!r} is not an IPv6 address") from None
        name = f"[{address}]"
    else:
        name, _, port = text.partition(":")
        port = f":{port}" if port else ""
        if not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?", name):
            raise ValueError(f"{text!r} is not a host name (such as school.example or 192.168.1.20)")
    if port and not re.fullmatch(r":\d{1,5}", port):
        raise ValueError(f"{text!r}: the port after the name must be a number")
    return name.rstrip(".")


def server_names(hostname: str | None, others: Iterable[str] = ()) -> frozenset[str]:
    """The names a server answers to: loopback, ``hostname`` (XLWINGS_HOSTNAME, NAME[:PORT]) and ``others``,
    as ``host_name`` writes them."""
    return frozenset(
        host_name(name) for name in (*LOOPBACK_HOSTS, *([hostname] if hostname else []), *others)
    )


def _host_names(text: str) -> tuple[str, ...]:
    return tuple(host_name(part) for part in text.split(",") if part.strip())


def _networks(text: str) -> tuple[str, ...]:
    """IP addresses or networks (``10.0.0.5``, ``10.0.0.0/24``), comma-separated."""
    try:
        return tuple(
            str(ipaddress.ip_network(part.strip(), strict=False)) for part in text.split(",") if part.strip()
        )
    except ValueError as error:
        raise ValueError(f"{error} (give IP addresses or networks such as 10.0.0.5 or 10.0.0.0/24)") from None


def _size(text: str) -> int:
    """A number of bytes: ``65536``, ``64K``, ``64 KiB``, ``8M``, ``8 MiB``."""
    match = re.fullmatch(r"(\d+)\s*([a-z]*)", text.strip().lower())
    if not match or match[2] not in SIZE_UNITS or int(match[1]) * SIZE_UNITS[match[2]] < 1024:
        raise ValueError(f"{text!r} is not a size of at least 1 KiB (such as 64KiB or 8MiB)")
    return int(match[1]) * SIZE_UNITS[match[2]]


def _rates(text: str) -> tuple[limits.RateLimitItem, ...]:
    """Limits such as ``2500 per 10 seconds; 5000 per minute`` (the ``limits`` package's notation)."""
    try:
        return tuple(limits.parse_many(text))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a list of rates such as '30 per 10 seconds; 120 per minute'"
        ) from None


def _storage(text: str) -> str:
    if text.split("://")[0] not in RATE_STORAGE_SCHEMES or "://" not in text:
        raise ValueError(f"{text!r} is not a storage URI such as memory:// or redis://HOST:6379/0")
    return text


PERIMETER_SETTINGS = {
    "allowed_hosts": Setting(
        "GRADSHEET_ALLOWED_HOSTS", "--allowed-host", "",
        "another name Excel reaches this server at, besides localhost, 127.0.0.1, ::1 and --hostname "
        "(NAME or NAME:PORT; may be given more than once). Requests for any other name are refused",
        _host_names, "NAME", several=True,
    ),
    "proxies": Setting(
        "GRADSHEET_PROXY", "--proxy", "",
        "the reverse proxy in front of this server (IP address or network; may be given more than once): "
        "only its X-Forwarded-For/-Proto headers are believed (default: nobody's)",
        _networks, "IP", several=True,
    ),
    "max_call_body": Setting(
        "GRADSHEET_MAX_CALL_BODY", "--max-call-body", "64KiB",
        "largest request body of a cell function call, or of any request but a button's",
        _size, "SIZE",
    ),
    "max_button_body": Setting(
        "GRADSHEET_MAX_BUTTON_BODY", "--max-button-body", "8MiB",
        "largest request body of a task-pane button (the workbook's sheets it reads)",
        _size, "SIZE",
    ),
    "call_rates": Setting(
        "GRADSHEET_RATE_CALLS", "--rate-calls", "2500 per 10 seconds; 5000 per minute",
        "cell function calls and task-pane status requests each client may make",
        _rates, "RATES",
    ),
    "button_rates": Setting(
        "GRADSHEET_RATE_BUTTONS", "--rate-buttons", "30 per 10 seconds; 120 per minute",
        "task-pane button presses each client may make",
        _rates, "RATES",
    ),
    "rate_storage": Setting(
        "GRADSHEET_RATE_STORAGE", "--rate-storage", "memory://",
        "where the rate limits count requests: memory:// (this process) or redis://HOST:PORT/DB (shared by "
        "several server processes)",
        _storage, "URI",
    ),
}  # fmt: skip


@dataclass(frozen=True)
class PerimeterOptions:
    """The perimeter's settings (see ``PERIMETER_SETTINGS`` for each one's variable, flag and meaning)."""

    allowed_hosts: tuple[str, ...]
    proxies: tuple[str, ...]
    max_call_body: int
    max_button_body: int
    call_rates: tuple[limits.RateLimitItem, ...]
    button_rates: tuple[limits.RateLimitItem, ...]
    rate_storage: str

    @staticmethod
    def from_env(env: Mapping[str, str] = os.environ) -> PerimeterOptions:
        """The settings the environment gives (a bad one raises ValueError naming its variable and flag)."""
        return PerimeterOptions(
            **{field.name: PERIMETER_SETTINGS[field.name].value(env) for field in fields(PerimeterOptions)}
        )


@functools.cache
def perimeter_options() -> PerimeterOptions:
    """This server's perimeter settings, read from the environment once."""
    return PerimeterOptions.from_env()
