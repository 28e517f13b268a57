"""Every command line's parser, by its name (``prog``): what the command-line and docs tests inspect.

``parsers``: the commands that share one vocabulary of flags (tests/test_cli.py holds them to it);
``other_parsers``: the add-in's server and worker and the docs' and server benchmarks' scripts, whose flags
are documented too (tests/test_engine_docs.py)."""

from __future__ import annotations


def parsers() -> dict:
    """Every command's parser, by its name."""
    import backprop_bench
    import doc_figures
    import mnist_bench
    import quickstart_bench
    import step_profile
    import textbook

    from excel_addin import report
    from excel_addin.xlsm import template
    from ml import backprop, explain, predict, train

    modules = (train, predict, explain, backprop, report, template, mnist_bench, backprop_bench, textbook)
    modules += (quickstart_bench, doc_figures)
    return {parser.prog: parser for parser in (m.build_parser() for m in (*modules, step_profile))}


def other_parsers() -> dict:
    """The add-in server's and worker's parsers, the server benchmarks' and the docs' scripts', by name."""
    import perimeter_bench
    import press_to_first_step

    from docs import make_icons, render_pictures, render_taskpane
    from excel_addin import worker
    from excel_addin.server import cli as server

    modules = (server, worker, perimeter_bench, press_to_first_step)
    modules += (render_pictures, render_taskpane, make_icons)
    return {parser.prog: parser for parser in (m.build_parser() for m in modules)}
