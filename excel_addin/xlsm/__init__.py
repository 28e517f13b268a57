"""Build time only: ``python -m excel_addin.xlsm [--out FILE]`` builds workbook_template.xlsm (into runs/
unless ``--out`` names another file, e.g. ``--out workbook_template.xlsm`` for the committed one).

``template`` renders the workbook description (``excel_addin.sheets``) with XlsxWriter and embeds the VBA
project (``vba``: ``vba_project`` edits vbaProject.bin at the source level, ``cfb_writer`` writes the
compound file, ``ovba_compression`` the MS-OVBA compression). Nothing at run time imports this package.
"""
