"""``python -m excel_addin.xlsm [--out PATH]``: write workbook_template.xlsm."""

from excel_addin.xlsm.template import main

raise SystemExit(main())
