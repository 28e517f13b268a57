"""Every command line's parser, by its name (``prog``): what the command-line and docs tests inspect."""

from __future__ import annotations


def parsers() -> dict:
    """Every command's parser, by its name."""
    import backprop_bench
    import mnist_bench
    import step_profile
    import textbook

    from excel_addin import report
    from excel_addin.xlsm import template
    from ml import backprop, explain, predict, train

    modules = (train, predict, explain, backprop, report, template, mnist_bench, backprop_bench, textbook)
    return {parser.prog: parser for parser in (m.build_parser() for m in (*modules, step_profile))}
