"""gradsheet's workbook, described once and rendered twice; used at run time (Set up, the buttons, the
report, the live Train sheet) and at build time (``excel_addin.xlsm``).

* ``layout``: which sheet and cell holds what; ``custom_model``: the Train sheet's Custom model table;
* ``spec``: the sheet description (cells with formulas and cached values, named styles, widths, notes,
  validation, conditional formats, names, panes, charts, buttons, pictures, print setup); ``styles``: the
  named formats; ``fallback``: what a cell that calls gradsheet's Python shows where that Python does not
  run; ``print_layout``: the scale and page breaks of a printed sheet;
* one module per sheet group: ``backprop_sheets`` (Backprop and the six LR formula sheets),
  ``derivation_sheet``, ``graphs_sheet``, ``train_sheet`` (also the report's and the live run's Train
  sheet), ``classify_sheet``, ``conf_sheet`` (xlwings.conf); ``workbook`` puts them together;
* two renderers: ``xlsx_render`` (XlsxWriter: the template file, the report) and ``book_render`` (any
  open xlwings Book), and ``sheet_sink`` (the Train sheet written live while a run goes);
* ``setup``: ``setup_workbook(book)`` turns an open workbook into gradsheet.
"""
