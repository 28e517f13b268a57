"""The macro-enabled workbook's face (``workbook_template.xlsm``): xlwings' classic UDFs (``udfs``), the
entry points its VBA buttons run (``macros``, whose VBA module is generated from them), all thin adapters
over the shared core (``excel_addin.cells``, ``excel_addin.buttons``). Nothing else imports this package,
except the template builder (``excel_addin.xlsm``), which writes its VBA.
"""
