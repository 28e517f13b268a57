"""``python -m excel_addin.xlsm [--out FILE]``: build workbook_template.xlsm (default: into runs/)."""

from excel_addin.xlsm.template import main

raise SystemExit(main())
