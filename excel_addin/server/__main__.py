"""``python -m excel_addin.server``: the add-in server's command line (``cli``), once the ``server`` extra's
packages are known to be installed (without them: one line saying how to install them, not a traceback)."""

import sys

from excel_addin.extras import require

require("server", "python -m excel_addin.server")

from excel_addin.server.cli import main  # noqa: E402  (after the check: cli imports the extra's packages)

sys.exit(main())
