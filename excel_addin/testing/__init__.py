"""Stand-ins for Excel, for the tests and the README's pictures (like ``numpy.testing``; never imported by
gradsheet itself): a remote-engine xlwings Book shaped like the template (``remote_book``), the add-in
server in a subprocess with its task-pane buttons pressed over HTTP (``live_server``), and headless
Chromium for pictures of web pages (``chromium``). They need the dev extra (openpyxl, httpx)."""
