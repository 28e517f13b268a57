"""Static files from folders that no request path can leave.

xlwings Server 1.20.0 serves ``/static`` with ``OverridableStaticFiles``, whose ``lookup_path`` joins the
decoded request path with the project's static folder and serves whatever file that names: so
``/static/%2e%2e/%2e%2e/.../etc/passwd`` returned any file the server's user could read, another student's
runs included. ``replace_static_mount`` puts Starlette's own ``StaticFiles`` in its place, over the same
folders in the same order (gradsheet's ``project/static`` first, so its files override xlwings Server's of
the same path, then xlwings Server's package static). With ``follow_symlink=False`` it resolves each path
to its real location and serves it only if that lies inside the folder it was looked up in: ``..`` in any
spelling, absolute paths and symbolic links pointing out of the folder all end in 404.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

STATIC_ROUTE = "static"  # the name xlwings Server mounts its static files under (templates use url_for)


class FolderStaticFiles(StaticFiles):
    """Starlette's ``StaticFiles`` over several folders, the first holding a path winning; symbolic links
    are not followed out of a folder."""

    def __init__(self, folders: Sequence[Path]):
        folders = [Path(folder).resolve() for folder in folders]
        missing = [str(folder) for folder in folders if not folder.is_dir()]
        if missing:
            raise RuntimeError(f"static folder(s) missing: {', '.join(missing)}")
        super().__init__(directory=folders[0], follow_symlink=False)
        self.all_directories = [os.fspath(folder) for folder in folders]


def served_folders(static_app) -> list[Path]:
    """The folders a static files app serves, in the order it looks: xlwings Server's
    ``OverridableStaticFiles`` looks in its user folder, then its package folder."""
    if hasattr(static_app, "user_dir") and hasattr(static_app, "package_dir"):
        return [Path(static_app.user_dir), Path(static_app.package_dir)]
    return [Path(folder) for folder in static_app.all_directories]


def replace_static_mount(app, name: str = STATIC_ROUTE) -> Mount:
    """Replace the mount called ``name`` among ``app``'s routes (a FastAPI or Starlette app) with one that
    serves the same folders safely, at the same path and position; the new mount. KeyError if none."""
    routes = app.router.routes
    index = next((i for i, route in enumerate(routes) if getattr(route, "name", None) == name), None)
    if index is None or not isinstance(routes[index], Mount):
        raise KeyError(f"no mount named {name!r} to replace")
    folders = served_folders(routes[index].app)
    mount = Mount(routes[index].path, app=FolderStaticFiles(folders), name=name)
    routes[index] = mount
    return mount
