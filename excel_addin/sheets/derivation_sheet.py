"""The Derivation sheet: the 2-2-2 network drawn, its forward equations, the chain rule for each of the
eight gradients (for both output choices), and a worked first update whose numbers are live formulas.

What a student writes on paper, in cells: the drawing shows every neuron and weight with its value at
epoch 0; the equations are text; the worked example computes each quantity from the lines above it (the
"with numbers" column spells the substitution out, the value column computes it) and checks it against the
same quantity on one of the LR sheets. Everything reads the Backprop sheet, so editing an input there, or
switching the output to softmax, changes every number here (tested with LibreOffice).
"""

from __future__ import annotations

from dataclasses import dataclass

from excel_addin.sheets import backprop_sheets as bs
from excel_addin.sheets import layout
from excel_addin.sheets.spec import PrintSetup, SheetSpec, a1, ref, sheet_ref
from ml import backprop

WORKED_RATE = layout.DEFAULT_RATES[layout.DERIVATION_RATE_INDEX]
WORKED_SHEET = layout.rate_sheet_name(WORKED_RATE)
SOFTMAX = 'output_fn="softmax"'
CHECK_TOLERANCE = 1e-12

# Quantities read from outside the worked example: symbol -> formula reference.
NAMED = {"i1": "input_1", "i2": "input_2", "t1": "target_1", "t2": "target_2", "b1": "bias_1", "b2": "bias_2"}


def lr_cell(key: str, epoch: int = 0) -> str:
    """A quantity of the worked LR sheet at an epoch: ``'LR 0.5'!$B$7``."""
    return bs.lr_cell(WORKED_RATE, key, epoch)


def rate_ref() -> str:
    return sheet_ref(WORKED_SHEET, layout.LR_RATE_CELL)


# ---- the worked example: one line per quantity ---------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One step of the worked example.

    ``tokens``: the right-hand side as symbols and literal text (``["w1", " × ", "i1"]``); a symbol is a
    name of ``NAMED``, a weight, ``η``, or an earlier line's quantity. ``value``: the formula over the same
    symbols (``"{w1}*{i1}"``). ``check``: the LR-sheet column and epoch holding the same quantity. Lines
    whose rule depends on the output choice give a softmax variant (``soft_tokens``, ``soft_value``).
    """

    symbol: str
    tokens: tuple[str, ...]
    value: str
    check: tuple[str, int]
    soft_tokens: tuple[str, ...] | None = None
    soft_value: str | None = None


def _sigmoid_line(symbol: str, of: str, key: str) -> Line:
    return Line(symbol, ("1 / (1 + e^(−", of, "))"), f"1/(1+EXP(-{{{of}}}))", (key, 0))


def _output_line(symbol: str, mine: str, other: str, key: str) -> Line:
    return Line(
        symbol, ("1 / (1 + e^(−", mine, "))"), f"1/(1+EXP(-{{{mine}}}))", (key, 0),
        soft_tokens=("1 / (1 + e^(", other, " − ", mine, "))"),
        soft_value=f"1/(1+EXP({{{other}}}-{{{mine}}}))",
    )  # fmt: skip


def _error_line(symbol: str, t: str, a: str, key: str) -> Line:
    return Line(
        symbol, ("½ × (", t, " − ", a, ")²"), f"0.5*({{{t}}}-{{{a}}})^2", (key, 0),
        soft_tokens=("−", t, " × ln ", a), soft_value=f"-{{{t}}}*LN({{{a}}})",
    )  # fmt: skip


def _delta_out_line(symbol: str, a: str, t: str, key: str) -> Line:
    return Line(
        symbol, ("(", a, " − ", t, ") × ", a, " × (1 − ", a, ")"),
        f"({{{a}}}-{{{t}}})*{{{a}}}*(1-{{{a}}})", (key, 0),
        soft_tokens=(a, " × (", "t1", " + ", "t2", ") − ", t),
        soft_value=f"{{{a}}}*({{t1}}+{{t2}})-{{{t}}}",
    )  # fmt: skip


def _delta_hidden_line(symbol: str, w_a: str, w_b: str, a: str, key: str) -> Line:
    tokens = ("(", "δo1", " × ", w_a, " + ", "δo2", " × ", w_b, ") × ", a, " × (1 − ", a, ")")
    return Line(symbol, tokens, f"({{δo1}}*{{{w_a}}}+{{δo2}}*{{{w_b}}})*{{{a}}}*(1-{{{a}}})", (key, 0))


def _product_line(symbol: str, left: str, right: str, key: str) -> Line:
    return Line(symbol, (left, " × ", right), f"{{{left}}}*{{{right}}}", (key, 0))


def _update_line(k: int) -> Line:
    w, grad = f"w{k}", f"∂E/∂w{k}"
    return Line(f"{w} ← ", (w, " − ", "η", " × ", grad), f"{{{w}}}-{{η}}*{{{grad}}}", (w, 1))


def worked_lines() -> list[tuple[str, list[Line]]]:
    """The first update in the order a student computes it, in sections."""
    forward = [
        Line("h1", ("w1", " × ", "i1", " + ", "w2", " × ", "i2", " + ", "b1"),
             "{w1}*{i1}+{w2}*{i2}+{b1}", ("h1", 0)),
        _sigmoid_line("a_h1", "h1", "a_h1"),
        Line("h2", ("w3", " × ", "i1", " + ", "w4", " × ", "i2", " + ", "b1"),
             "{w3}*{i1}+{w4}*{i2}+{b1}", ("h2", 0)),
        _sigmoid_line("a_h2", "h2", "a_h2"),
        Line("o1", ("w5", " × ", "a_h1", " + ", "w6", " × ", "a_h2", " + ", "b2"),
             "{w5}*{a_h1}+{w6}*{a_h2}+{b2}", ("o1", 0)),
        Line("o2", ("w7", " × ", "a_h1", " + ", "w8", " × ", "a_h2", " + ", "b2"),
             "{w7}*{a_h1}+{w8}*{a_h2}+{b2}", ("o2", 0)),
        _output_line("a_o1", "o1", "o2", "a_o1"),
        _output_line("a_o2", "o2", "o1", "a_o2"),
        _error_line("E1", "t1", "a_o1", "E1"),
        _error_line("E2", "t2", "a_o2", "E2"),
        Line("E_total", ("E1", " + ", "E2"), "{E1}+{E2}", ("E_total", 0)),
    ]  # fmt: skip
    backward = [
        _delta_out_line("δo1", "a_o1", "t1", "d_o1"),
        _delta_out_line("δo2", "a_o2", "t2", "d_o2"),
        _product_line("∂E/∂w5", "δo1", "a_h1", "dE_dw5"),
        _product_line("∂E/∂w6", "δo1", "a_h2", "dE_dw6"),
        _product_line("∂E/∂w7", "δo2", "a_h1", "dE_dw7"),
        _product_line("∂E/∂w8", "δo2", "a_h2", "dE_dw8"),
        _delta_hidden_line("δh1", "w5", "w7", "a_h1", "d_h1"),
        _delta_hidden_line("δh2", "w6", "w8", "a_h2", "d_h2"),
        _product_line("∂E/∂w1", "δh1", "i1", "dE_dw1"),
        _product_line("∂E/∂w2", "δh1", "i2", "dE_dw2"),
        _product_line("∂E/∂w3", "δh2", "i1", "dE_dw3"),
        _product_line("∂E/∂w4", "δh2", "i2", "dE_dw4"),
    ]
    update = [_update_line(k) for k in range(1, 9)]
    return [
        ("Forward pass (epoch 0: the initial weights)", forward),
        ("Backward pass: the chain rule, from the error back to every weight", backward),
        (f"The update: every weight at once, learning rate η from the {WORKED_SHEET} sheet", update),
    ]


def _cached(network: backprop.Network) -> dict[str, float]:
    """Every worked quantity's value, from ml.backprop (the cells' cached values)."""
    table = backprop.trajectory(WORKED_RATE, 1, network)
    col = backprop.COLUMNS.index
    values = {name: float(table[0, col(name)]) for name in backprop.COLUMNS[1:]}
    d_o1, d_o2, d_h1, d_h2 = backprop.deltas(
        network, network.weights, backprop.forward(network, network.weights)
    )
    values.update({"δo1": d_o1, "δo2": d_o2, "δh1": d_h1, "δh2": d_h2, "η": WORKED_RATE})
    values.update({f"∂E/∂w{k}": values[f"dE_dw{k}"] for k in range(1, 9)})
    values.update({f"w{k} ← ": float(table[1, col(f"w{k}")]) for k in range(1, 9)})
    inputs = (*network.inputs, *network.targets, *network.biases)
    values.update(zip(("i1", "i2", "t1", "t2", "b1", "b2"), inputs, strict=True))
    return values


def _number(ref_: str) -> str:
    """A formula turning a cell's number into text with 6 significant digits, negatives in brackets."""
    rounded = f"ROUND({ref_},5-INT(LOG10(ABS({ref_})+1E-300)))"
    return f'IF({ref_}<0,"("&{rounded}&")",{rounded}&"")'


def _substituted(tokens: tuple[str, ...], refs: dict[str, str]) -> str:
    """The text formula that spells a line out with numbers: ``"0.15 × 0.05"``."""
    parts = [_number(refs[t]) if t in refs else '"' + t.replace('"', '""') + '"' for t in tokens]
    return "&".join(parts)


def _rule(symbol: str, tokens: tuple[str, ...]) -> str:
    return f"{symbol} = " + "".join(tokens) if not symbol.endswith("← ") else symbol + "".join(tokens)


def _value(template: str, refs: dict[str, str]) -> str:
    return template.format(**refs)


# ---- the sheet ----------------------------------------------------------------------------------------

# the worked example's columns: the rule spans B:F and the numbers G:N (long lines), then one cell each
WORKED_COLUMNS = {"rule": "B", "numbers": "G", "value": "O", "sheet": "P", "check": "Q"}
WORKED_SPANS = {"rule": "F", "numbers": "N"}


DIAGRAM_ROWS = 10  # title, layer heads, two units (name and value rows), the crossing, E_total


def chain_rule_rows() -> int:
    """The chain-rule section's height: its title, one row per text, two per text with both choices."""
    return 1 + sum(2 if choices else 1 for _, choices in CHAIN_RULE)


def section_tops() -> dict[str, int]:
    """0-based first row of each section; the worked example's is the header row of its table."""
    tops = {"diagram": 3}
    tops["equations"] = tops["diagram"] + DIAGRAM_ROWS + 1
    tops["chain"] = tops["equations"] + 1 + len(EQUATIONS) + 1
    tops["worked"] = tops["chain"] + chain_rule_rows() + 2
    return tops


def derivation_sheet() -> SheetSpec:
    """The whole sheet (see the module docstring)."""
    sheet = SheetSpec(layout.DERIVATION_SHEET, tab_color="#C9A0DC")
    sheet.column_width("A", 2)
    sheet.column_width("B", 10, last="N")  # the rule (B:F) fits its longest line, δh1
    sheet.column_width("O", 13, last="P")
    sheet.column_width("Q", 12)
    sheet.write("B1", "The chain rule on a sheet: how the 2-2-2 network learns", "title")
    sheet.write(
        "B2",
        "Everything here follows the Backprop sheet: edit an input, a weight or the output activation "
        "there, and every number below changes.",
        "subtitle",
    )
    values = _cached(backprop.Network())
    refs = _worked_refs()
    tops = section_tops()
    _diagram(sheet, tops["diagram"], refs, values)
    _equations(sheet, tops["equations"])
    _chain_rule(sheet, tops["chain"])
    _worked_example(sheet, tops["worked"], refs, values)
    # two pages: the network, equations and chain rule; the worked example (from its title)
    sheet.printing = PrintSetup(row_breaks=[tops["worked"] - 1], one_page=True)
    return sheet


# ---- the drawing ------------------------------------------------------------------------------------

DIAGRAM_COLUMNS = {"in": 1, "edge": (2, 4), "h": 5, "a_h": 6, "edge2": (7, 9), "o": 10, "a_o": 11, "E": 13}


def _diagram(sheet: SheetSpec, top: int, refs: dict[str, str], values: dict[str, float]) -> None:
    """The network as cells: neurons as coloured boxes with their values, weights on the arrows."""
    sheet.write((top, 1), "The network (values at epoch 0)", "section")
    heads = (("in", "inputs"), ("h", "hidden layer"), ("o", "output layer"), ("E", "error"))
    for key, text in heads:
        sheet.write((top + 1, DIAGRAM_COLUMNS[key]), text, "diagram_head")
    for unit, row in ((1, top + 2), (2, top + 6)):
        _diagram_row(sheet, row, unit, refs, values)
    _crossing(sheet, top + 4, DIAGRAM_COLUMNS["edge"], ("w3", "w2"), refs, values)
    _crossing(sheet, top + 4, DIAGRAM_COLUMNS["edge2"], ("w7", "w6"), refs, values)
    total = top + 9
    sheet.write((total, DIAGRAM_COLUMNS["E"] - 1), "E_total = E1 + E2", "diagram_total")
    sheet.formula((total, DIAGRAM_COLUMNS["E"]), "=" + refs["E_total"], values["E_total"], "neuron_error")


def _diagram_row(sheet, row: int, unit: int, refs, values) -> None:
    """One unit of each layer (i, h/a_h, o/a_o, E) and the straight arrows between them."""
    c = DIAGRAM_COLUMNS
    direct = {1: ("w1", "w5"), 2: ("w4", "w8")}[unit]
    boxes = (
        ("in", f"i{unit}", "neuron_in"),
        ("h", f"h{unit}", "neuron_hidden"),
        ("a_h", f"a_h{unit}", "neuron_hidden"),
        ("o", f"o{unit}", "neuron_out"),
        ("a_o", f"a_o{unit}", "neuron_out"),
        ("E", f"E{unit}", "neuron_error"),
    )
    for key, symbol, style in boxes:
        sheet.write((row, c[key]), symbol, style)
        sheet.formula((row + 1, c[key]), "=" + refs[symbol], values[symbol], style)
    for (first, last), weight in zip((c["edge"], c["edge2"]), direct, strict=True):
        sheet.write((row, first), "────", "diagram_edge")
        sheet.write((row, first + 1), weight, "diagram_weight")
        sheet.write((row, last), "────▶", "diagram_edge")
        sheet.formula((row + 1, first + 1), "=" + refs[weight], values[weight], "diagram_value")
    sheet.write((row, c["a_o"] + 1), "──▶", "diagram_edge")


def _crossing(sheet, row: int, columns: tuple[int, int], weights: tuple[str, str], refs, values) -> None:
    """The two crossing arrows between a layer's units: down (unit 1 to unit 2) and up."""
    first, last = columns
    down, up = weights
    sheet.write((row - 1, first), "╲", "diagram_edge")
    sheet.write((row, first), down, "diagram_weight")
    sheet.formula((row + 1, first), "=" + refs[down], values[down], "diagram_value")
    sheet.write((row, first + 1), "╳", "diagram_edge")
    sheet.write((row - 1, last), "╱", "diagram_edge")
    sheet.write((row, last), up, "diagram_weight")
    sheet.formula((row + 1, last), "=" + refs[up], values[up], "diagram_value")


# ---- equations and the chain rule, as text ----------------------------------------------------------

EQUATIONS = (
    ("h1 = w1·i1 + w2·i2 + b1", "", ""),
    ("h2 = w3·i1 + w4·i2 + b1", "", ""),
    ("a_h1 = σ(h1) = 1 / (1 + e^−h1)", "", ""),
    ("a_h2 = σ(h2)", "", ""),
    ("o1 = w5·a_h1 + w6·a_h2 + b2", "", ""),
    ("o2 = w7·a_h1 + w8·a_h2 + b2", "", ""),
    ("a_o1 =", "σ(o1)", "e^o1 / (e^o1 + e^o2)"),
    ("a_o2 =", "σ(o2)", "e^o2 / (e^o1 + e^o2)"),
    ("E1 =", "½ (t1 − a_o1)²", "−t1 · ln a_o1"),
    ("E2 =", "½ (t2 − a_o2)²", "−t2 · ln a_o2"),
    ("E_total = E1 + E2", "", ""),
)
# δo1 and δo2 for each output choice (sigmoid + squared error, softmax + cross-entropy)
DELTA_OUT = {
    1: ("(a_o1 − t1) a_o1 (1 − a_o1)", "(a_o1 (t1 + t2) − t1)"),
    2: ("(a_o2 − t2) a_o2 (1 − a_o2)", "(a_o2 (t1 + t2) − t2)"),
}


def written_out(k: int) -> tuple[str, str]:
    """∂E_total/∂wk with every δ replaced by what it stands for, for both output choices."""
    if k >= 5:  # w5, w6 feed o1; w7, w8 feed o2; w5, w7 come from a_h1
        out, hidden = (1 if k <= 6 else 2), (1 if k in (5, 7) else 2)
        return tuple(f"{DELTA_OUT[out][c]} · a_h{hidden}" for c in range(2))
    hidden, unit = (1 if k <= 2 else 2), (1 if k in (1, 3) else 2)  # w1, w2 feed h1; w1, w3 read i1
    wa, wb = ("w5", "w7") if hidden == 1 else ("w6", "w8")
    return tuple(
        f"[{DELTA_OUT[1][c]} {wa} + {DELTA_OUT[2][c]} {wb}] · a_h{hidden} (1 − a_h{hidden}) · i{unit}"
        for c in range(2)
    )


CHOICES = ('output "sigmoid": squared error', 'output "softmax": cross-entropy')
CHAIN_RULE = (
    ("Output layer: w5 reaches E_total only through o1 (w6 too; w7 and w8 through o2)", None),
    ("∂E_total/∂w5 = ∂E_total/∂o1 · ∂o1/∂w5 = δo1 · a_h1", None),
    ("δo1 = ∂E_total/∂o1 =", ("∂E1/∂a_o1 · ∂a_o1/∂o1 = (a_o1 − t1) · a_o1 (1 − a_o1)",
                            "∂E1/∂o1 + ∂E2/∂o1 = −t1 (1 − a_o1) + t2 a_o1 = a_o1 (t1 + t2) − t1")),
    ("δo2 = ∂E_total/∂o2 =", ("(a_o2 − t2) · a_o2 (1 − a_o2)", "a_o2 (t1 + t2) − t2")),
    ("∂E_total/∂w6 = δo1 · a_h2      ∂E_total/∂w7 = δo2 · a_h1      ∂E_total/∂w8 = δo2 · a_h2", None),
    ("Hidden layer: w1 reaches E_total through h1 and a_h1, and from a_h1 through both outputs", None),
    ("∂E_total/∂a_h1 = ∂E_total/∂o1 · ∂o1/∂a_h1 + ∂E_total/∂o2 · ∂o2/∂a_h1 = δo1 · w5 + δo2 · w7", None),
    ("∂E_total/∂a_h2 = δo1 · w6 + δo2 · w8", None),
    ("δh1 = ∂E_total/∂h1 = ∂E_total/∂a_h1 · ∂a_h1/∂h1 = (δo1 · w5 + δo2 · w7) · a_h1 (1 − a_h1)", None),
    ("δh2 = ∂E_total/∂h2 = (δo1 · w6 + δo2 · w8) · a_h2 (1 − a_h2)", None),
    ("∂E_total/∂w1 = δh1 · ∂h1/∂w1 = δh1 · i1      ∂E_total/∂w2 = δh1 · i2", None),
    ("∂E_total/∂w3 = δh2 · i1      ∂E_total/∂w4 = δh2 · i2", None),
    ("Written out in full:", None),
    *((f"∂E_total/∂w{k} =", written_out(k)) for k in range(1, 9)),
    ("Gradient descent: every weight at once, w ← w − η · ∂E_total/∂w, with the gradients of one forward "
     "pass (the LR sheets do one such update per row)", None),
)  # fmt: skip


def _equations(sheet: SheetSpec, top: int) -> None:
    sheet.write((top, 1), "Forward pass", "section")
    sheet.write((top, 5), CHOICES[0], "section")
    sheet.write((top, 9), CHOICES[1], "section")
    for k, (left, sigmoid, softmax) in enumerate(EQUATIONS, start=1):
        sheet.write((top + k, 1), left, "equation")
        if sigmoid:
            sheet.write((top + k, 5), sigmoid, "equation")
            sheet.write((top + k, 9), softmax, "equation")


def _chain_rule(sheet: SheetSpec, top: int) -> None:
    sheet.write((top, 1), "Backward pass: the chain rule for each of the eight gradients", "section")
    row = top + 1
    for text, choices in CHAIN_RULE:
        heading = choices is None and not text.startswith(("∂", "δ"))
        sheet.write((row, 1), text, "equation_head" if heading else "equation")
        for choice, formula in zip(CHOICES, choices or (), strict=False):
            sheet.write((row, 4), f"{choice.split(':')[0]}: {formula}", "equation")
            row += 1
        row += 0 if choices else 1


# ---- the worked example ------------------------------------------------------------------------------


def _worked_refs() -> dict[str, str]:
    """Where each symbol's number is read: names, the worked LR sheet, or the worked lines' value cells."""
    refs = dict(NAMED)
    refs.update({f"w{k}": lr_cell(f"w{k}") for k in range(1, 9)})
    refs["η"] = rate_ref()
    value_col = ref(f"{WORKED_COLUMNS['value']}1")[1]
    row = section_tops()["worked"]
    for _, lines in worked_lines():
        row += 1  # the section's heading
        for line in lines:
            row += 1
            refs[line.symbol] = a1((row, value_col), absolute=True)
    return refs


def _worked_example(sheet: SheetSpec, top: int, refs: dict[str, str], values: dict[str, float]) -> None:
    cols = {name: ref(f"{letter}1")[1] for name, letter in WORKED_COLUMNS.items()}
    sheet.write(
        (top - 1, 1), f"Worked example: the first update at learning rate η = {WORKED_RATE:g}", "section"
    )
    headers = {"rule": "rule", "numbers": "with the numbers", "value": "value",
               "sheet": f"{WORKED_SHEET} sheet", "check": "same?"}  # fmt: skip
    for name, text in headers.items():
        if name in WORKED_SPANS:
            sheet.merge((top, cols[name]), (top, ref(f"{WORKED_SPANS[name]}1")[1]), text, "header")
        else:
            sheet.write((top, cols[name]), text, "header")
    row = top
    for title, lines in worked_lines():
        row += 1
        sheet.write((row, 1), title, "equation_head")
        for line in lines:
            row += 1
            _worked_line(sheet, row, cols, line, refs, values)


def _worked_line(sheet, row: int, cols, line: Line, refs: dict[str, str], values: dict[str, float]) -> None:
    rule = _rule(line.symbol, line.tokens)
    numbers = _substituted(line.tokens, refs)
    value = _value(line.value, refs)
    if line.soft_tokens:
        soft_rule = _rule(line.symbol, line.soft_tokens)
        sheet.formula((row, cols["rule"]), f'=IF({SOFTMAX},"{soft_rule}","{rule}")', rule, "equation")
        numbers = f"IF({SOFTMAX},{_substituted(line.soft_tokens, refs)},{numbers})"
        value = f"IF({SOFTMAX},{_value(line.soft_value, refs)},{value})"
    else:
        sheet.write((row, cols["rule"]), rule, "equation")
    sheet.formula((row, cols["numbers"]), f'="= "&{numbers}', "", "equation")
    key, epoch = line.check
    cached = values[line.symbol]
    sheet.formula((row, cols["value"]), f"={value}", cached, "worked_value")
    sheet.formula((row, cols["sheet"]), "=" + lr_cell(key, epoch), cached, "worked_value")
    here, there = a1((row, cols["value"])), a1((row, cols["sheet"]))
    check = f'=IF(ABS({here}-{there})<={CHECK_TOLERANCE}*MAX(1,ABS({there})),"✓ the same","✗ differs")'
    sheet.formula((row, cols["check"]), check, "✓ the same", "worked_check")
