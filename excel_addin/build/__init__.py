"""gradsheet's workbook, described once and rendered twice.

* ``spec``: the sheet description (cells with formulas and cached values, named styles, widths, notes,
  validation, conditional formats, names, panes, charts, buttons, pictures); ``styles``: the named formats;
* one module per sheet group: ``backprop_sheets`` (Backprop and the six LR formula sheets),
  ``graphs_sheet``, ``train_sheet`` (also the report's and the live run's Train sheet), ``classify_sheet``,
  ``conf_sheet`` (xlwings.conf); ``workbook`` puts them together;
* two renderers: ``xlsx_render`` (XlsxWriter: the template file, the report) and ``book_render`` (any
  open xlwings Book);
* ``template``: ``python -m excel_addin.build`` writes workbook_template.xlsm with its VBA project
  (``vba``: ``vba_project``, ``cfb_writer``, ``ovba_compression``);
* ``setup``: ``setup_workbook(book)`` turns an open workbook into gradsheet;
* ``libreoffice``: LibreOffice headless, to recalculate and render workbooks (tests, README pictures).
"""

from excel_addin.build.setup import setup_workbook
from excel_addin.build.template import build

__all__ = ["build", "setup_workbook"]
