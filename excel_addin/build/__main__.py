"""``python -m excel_addin.build [--out PATH]``: write workbook_template.xlsm."""

from excel_addin.build.template import main

raise SystemExit(main())
