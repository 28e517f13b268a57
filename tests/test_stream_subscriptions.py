"""The same TRAIN_PROGRESS formula in two cells (issue 24, finding 4): xlwings' client keys a stream's
subscription by task key and cell address, and Excel gives a streaming call no address, so the second cell
replaced the first one's subscription (which stayed at "Waiting for stream..."). gradsheet serves the
custom-functions code with a subscription per cell (``excel_addin.server.streams.per_cell_streams``).

The served code's subscription function runs in a real headless Chromium, against xlwings' own version as
the control: Excel's invocation objects stand in as plain objects (one per cell, as Excel passes them)."""

from __future__ import annotations

import json

import pytest

from excel_addin.testing.chromium import browser, page_text

pytestmark = [pytest.mark.skipif(browser() is None, reason="needs chromium"), pytest.mark.slow]

# Two cells with the same formula (two invocations without an address), the first cell asking again, and
# a call that has an address (a non-streaming custom function's): their subscription ids, as JSON.
CALLS = """
const first = {}, second = {};
const ids = [
  getStreamingSubscriptionId("TRAIN_PROGRESS_key", first),
  getStreamingSubscriptionId("TRAIN_PROGRESS_key", second),
  getStreamingSubscriptionId("TRAIN_PROGRESS_key", first),
  getStreamingSubscriptionId("BACKPROP_LOSS_key", {address: "Sheet1!A1"}),
];
document.body.textContent = JSON.stringify(ids);
"""


def subscription_ids(function_js: str, tmp_path) -> list[str]:
    """What ``function_js``'s getStreamingSubscriptionId gives for CALLS, run in headless Chromium."""
    page = tmp_path / "page.html"
    page.write_text(f"<html><body><script>{function_js}\n{CALLS}</script></body></html>")
    return json.loads(page_text(page.as_uri()))


def served_function(client) -> str:
    """The subscription function out of the custom-functions code the server sends to Excel."""
    js = client.get("/xlwings/custom-functions-code.js").text
    start = js.index("// gradsheet: one subscription per cell")
    end = js.index("\n}", js.index("function getStreamingSubscriptionId", start)) + 2
    return js[start:end]


def test_two_cells_with_one_formula_get_a_subscription_each(client, tmp_path):
    first, second, first_again, addressed = subscription_ids(served_function(client), tmp_path)
    assert first != second  # each cell its own subscription: neither replaces the other
    assert first_again == first  # a cell asking again keeps its own
    assert addressed == "BACKPROP_LOSS_key::Sheet1!A1"  # calls with an address are keyed as xlwings does


def test_xlwings_own_code_gives_both_cells_one_subscription(client, tmp_path):
    """The control: the function the patch replaces keys both cells alike (so the test above can fail)."""
    from excel_addin.server import streams  # after the app is configured (the client fixture)

    first, second, _, _ = subscription_ids(streams._SUBSCRIPTION_ID, tmp_path)
    assert first == second == "TRAIN_PROGRESS_key::undefined"


def test_an_unexpected_xlwings_code_is_refused_not_served_unpatched(client):
    from excel_addin.server import streams

    with pytest.raises(RuntimeError, match="custom-functions code changed"):
        streams.per_cell_streams("function somethingElse() {}")
