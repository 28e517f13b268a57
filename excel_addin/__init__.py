"""gradsheet's Excel face: xlwings cell functions, button macros, sheet writers and the template builder.

Everything here is thin: it validates and converts spreadsheet values, then calls ``ml``.
"""
