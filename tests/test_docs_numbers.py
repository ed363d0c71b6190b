"""Every number that README.md, docs/design.md and data/MODEL_CARD.md quote from a stored data file is compared
with that file here, to the decimals it is printed with: a re-made evaluation, retrained weights or an edited
sentence that leaves a number stale fails with the document, its line and both values.

Two conventions, both invisible when the documents are rendered:

- **tables** are recognised by their header line (``TABLES``: the document, the header as written, and what each
  row's cells must hold); every table listed must be found, and every row of it is checked;
- **a number in the text** followed by ``<!-- check: KEY -->`` (the notebooks' convention) is the stored value
  ``KEY`` of ``stored_values``; ``0.620 [0.544, 0.688]<!-- check: KEY -->`` checks a mean and its interval,
  ``1.09-1.25<!-- check: KEY -->`` the smallest and largest of a set. A key of ``notebooks/reference_values.json``
  may be quoted too.

The stored files, and the command each document must name beside the numbers it quotes from them (``COMMANDS``):
``data/val_metrics.json`` (``eval --split val``, then ``compare``), ``data/table1_val.json`` (``report --full
--starts 3``), ``data/training_logs/`` (``train --config configs/lite.json``; read by
``stif_core.lab.training_logs.read_training_logs``), ``stif_core/weights/`` and its ``notebook_seeds.json``, and
``notebooks/reference_values.json`` (``references --store``), ``data/crossval.json`` (``crossval``).
"""
from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import NamedTuple

import pytest

from stif_core import paths
from stif_core.config import VARIANTS
from stif_core.evaluation.compare import comparison
from stif_core.evaluation.results import read_metrics
from stif_core.lab.training_logs import read_training_logs
from stif_core.model.knockouts import KNOCKOUTS

PROJECT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "docs/design.md", "data/MODEL_CARD.md")
COMMANDS = {  # a document that quotes a family of stored values names the command that makes them
    "val": "python -m stif_core eval --split val --checkpoint stif_lite_full --checkpoint stif_lite_baseline",
    "table1": "python -m stif_core report --full --starts 3",
    "logs": "train --config configs/lite.json",
    "notebooks": "python -m stif_core references",
    "cv": "python -m stif_core crossval",
}
VAL_ROWS = {"full": "stif-full-onnx", "baseline": "stif-baseline-onnx", "csrt": "csrt", "kcf": "kcf"}
NUMBER = r"[-+]?\d+(?:\.\d+)?"
MARKED = re.compile(rf"(?P<a>{NUMBER})(?:-(?P<b>\d+(?:\.\d+)?)|\s\[(?P<lo>{NUMBER}),\s*(?P<hi>{NUMBER})\])?"
                    r"\s*<!--\s*check:\s*(?P<key>[^>]+?)\s*-->")


class Interval(NamedTuple):  # a mean and its bootstrap 95% interval
    mean: float
    low: float
    high: float


class Span(NamedTuple):  # the smallest and the largest of a set of values
    low: float
    high: float


# --- what the stored files hold -----------------------------------------------------------------------------------

def load_stored(project: Path = PROJECT) -> dict:
    """Every stored file the documents quote, read as the package reads it."""
    seeds = {v: paths.row_seeds(v) for v in VARIANTS}
    logs = {name: read_training_logs(project / "data" / "training_logs" / f"{name}.jsonl.gz")
            for names in seeds.values() for name in names}
    return {"val": read_metrics(project / "data" / "val_metrics.json"),
            "table1": read_metrics(project / "data" / "table1_val.json"),
            "seeds": seeds, "logs": logs, "notebook_seeds": paths.notebook_seeds(),
            "file_mb": {n: paths.checkpoint_path(n).stat().st_size / 1e6 for n in logs},
            "references": json.loads((project / "notebooks" / "reference_values.json").read_text())["values"],
            "cv": read_metrics(project / "data" / "crossval.json")}


def selected(logs: dict) -> dict:
    """The checkpoint a run shipped (its lowest val loss), and the run's wall time (the ``elapsed_s`` of its last
    step; a resumed run restarts the clock, and its parts are added)."""
    best = min(logs["validation"], key=lambda r: r["val_loss"])
    elapsed = [r["elapsed_s"] for r in logs["log"]]
    restarts = [i for i in range(1, len(elapsed)) if elapsed[i] < elapsed[i - 1]]
    seconds = int(elapsed[-1] + sum(elapsed[i - 1] for i in restarts))
    return best | {"wall": f"{seconds // 60} min {seconds % 60} s" + (" (resumed)" if restarts else "")}


def val_values(rows: dict) -> dict:
    """``data/val_metrics.json``: each tracker's overall metrics (AUC with its bootstrap interval over sequences),
    per-sequence AUCs, and the paired differences of every pair (``compare --reference``)."""
    v = {"val sequences": len(rows["csrt"]["per_sequence"])}
    for ref, ref_name in VAL_ROWS.items():
        table = comparison(rows, ref_name, ("auc",))
        for short, name in VAL_ROWS.items():
            r = table.loc[name]
            v[f"val {short} auc"] = Interval(r["auc"], r["auc_low"], r["auc_high"])
            if short != ref:
                v[f"val {short} minus {ref} auc"] = Interval(r["d_auc"], r["d_auc_low"], r["d_auc_high"])
                v[f"val {short} ahead of {ref}"], v[f"val {short} behind {ref}"] = r["auc_ahead"], r["auc_behind"]
    for short, name in VAL_ROWS.items():
        v |= {f"val {short} {k}": rows[name]["overall"][k] for k in ("prec20", "norm_prec", "ao", "sr50", "sr75")}
        v |= {f"val {seq} {short} auc": s["auc"] for seq, s in rows[name]["per_sequence"].items()}
    return v


@cache
def table1_tables(text: str):
    from stif_core.lab.table1 import knockout_table, variant_table

    rows = json.loads(text)
    return variant_table(rows), knockout_table(rows)


def table1_values(rows: dict) -> dict:
    """``data/table1_val.json`` as notebook 10 and the report tabulate it (``lab.table1``): each row's mean over
    seeds and sequences with its interval, the seeds' spread, the paired difference against the baseline (a
    knock-out: against the full model), and a few figures over the rows."""
    from stif_core.lab.table1 import row_groups

    variants, knockouts = table1_tables(json.dumps(rows))  # row order pairs the seeds
    v = {}
    for table, ref in ((variants, "baseline"), (knockouts, "full")):
        for name, r in table.iterrows():
            v[f"table1 {name} auc"] = Interval(r["auc"], r["auc_low"], r["auc_high"])
            v |= {f"table1 {name} {k}": r[k] for k in ("ao", "sr75") if k in r}
            v[f"table1 {name} seed sd"] = r["auc_seed_sd"]
            if name != ref:
                v[f"table1 {name} minus {ref} auc"] = Interval(r["d_auc"], r["d_auc_low"], r["d_auc_high"])
                v[f"table1 {name} ahead of {ref}"], v[f"table1 {name} behind {ref}"] = r["auc_ahead"], r["auc_behind"]
                v[f"table1 {name} resolved"] = bool(r["auc_resolved"])
    v["table1 auc"] = Span(variants["auc"].min(), variants["auc"].max())
    v["table1 seed sd"] = Span(variants["auc_seed_sd"].min(), variants["auc_seed_sd"].max())
    widths = (variants["d_auc_high"] - variants["d_auc_low"]).dropna()
    v["table1 median width minus baseline"] = float(widths.median())
    groups = row_groups(rows)
    seed_means = {n: sum(s["auc"] for s in rows[n]["per_sequence"].values()) / len(rows[n]["per_sequence"])
                  for k in VARIANTS for n in groups[k]}
    ranges = [max(m) - min(m) for m in ([seed_means[n] for n in groups[k]] for k in VARIANTS)]
    v["table1 largest seed range auc"] = max(ranges)
    from stif_core.lab.table1 import power_table

    for row, r in power_table(rows).iterrows():
        v |= {f"table1 power {row} {column}": value for column, value in r.items()}
    return v


def logs_values(logs: dict) -> dict:
    """``data/training_logs/``: each run's selected checkpoint (step, val and train loss, the probe's IoU) and
    the spans over the 18 runs."""
    best = {name: selected(run) for name, run in logs.items()}
    v = {}
    for key, field in (("best val loss", "val_loss"), ("train loss at best", "train_loss"),
                       ("gap at best", "gap"), ("val iou at best", "val_iou")):
        values = [b[field] for b in best.values()]
        v[f"logs {key}"] = Span(min(values), max(values))
        v |= {f"logs {name} {key}": b[field] for name, b in best.items()}
    return v


def cv_values(rows: dict) -> dict:
    """``data/crossval.json``: the recipes' and peers' AUC pooled over the held-out folds, and each against the
    reference recipe (the ImageNet trunk, ``lite``), paired by sequence."""
    table = comparison(rows, "lite", ("auc",))
    v = {"cv sequences": len(next(iter(rows.values()))["per_sequence"])}
    for name, r in table.iterrows():
        v[f"cv {name} auc"] = Interval(r["auc"], r["auc_low"], r["auc_high"])
        if name != "lite":
            v[f"cv {name} minus lite auc"] = Interval(r["d_auc"], r["d_auc_low"], r["d_auc_high"])
            v[f"cv {name} ahead of lite"] = r["auc_ahead"]
    return v


def stored_values(stored: dict) -> dict:
    """Every value a document may quote with ``<!-- check: KEY -->``."""
    return (val_values(stored["val"]) | table1_values(stored["table1"]) | logs_values(stored["logs"])
            | cv_values(stored["cv"])
            | {k: r["value"] for k, r in stored["references"].items()})


def family(key: str) -> str:
    return "notebooks" if re.match(r"\d\d ", key) else key.split()[0]


# --- the tables ---------------------------------------------------------------------------------------------------

@dataclass
class Table:
    doc: str
    header: str  # the header line, exactly as written
    family: str  # which stored file it quotes (COMMANDS)
    rows: dict  # a row's key (its first cell, unless ``key`` says otherwise) -> {column: numbers or exact text}
    key: object = None  # cells -> the row's key


def interval(i: Interval) -> list[float]:
    return [i.mean, i.low, i.high]


def tables(stored: dict) -> list[Table]:
    val, t1 = val_values(stored["val"]), table1_values(stored["table1"])
    overall = {short: stored["val"][name]["overall"] for short, name in VAL_ROWS.items()}
    card_val = {f"stif-{s} (`_s2`)" if s in ("full", "baseline") else s: s for s in VAL_ROWS}
    design_val = {"STIF full": "full", "STIF baseline": "baseline", "CSRT": "csrt", "KCF": "kcf"}
    columns = {"prec@20": "prec20", "norm. prec": "norm_prec", "AO": "ao", "SR0.5": "sr50", "SR0.75": "sr75"}
    sequences = list(stored["val"]["csrt"]["per_sequence"])
    from stif_core.lab.table1 import PAPER_TABLE1

    def table1_row(row: str) -> dict:
        d = f"table1 {row} minus baseline auc"
        return {"seeds": [len(stored["seeds"][row])], "AUC [95%]": interval(t1[f"table1 {row} auc"]),
                "AO": [t1[f"table1 {row} ao"]], "SR0.75": [t1[f"table1 {row} sr75"]],
                "seed sd (AUC)": [t1[f"table1 {row} seed sd"]],
                "d AUC vs baseline [95%]": interval(t1[d]) if d in t1 else "",
                "ahead/behind": ([t1[f"table1 {row} ahead of baseline"], t1[f"table1 {row} behind baseline"]]
                                 if d in t1 else ""),
                "paper AO": [PAPER_TABLE1[row][0]]}

    def knockout_row(name: str) -> dict:
        k = f"table1 full-ko-{name}"
        return {"AUC [95%]": interval(t1[f"{k} auc"]), "d AUC vs full [95%]": interval(t1[f"{k} minus full auc"]),
                "ahead/behind": [t1[f"{k} ahead of full"], t1[f"{k} behind full"]],
                "resolved": "yes" if t1[f"{k} resolved"] else "no"}

    def seed_row(name: str) -> dict:
        b, k = selected(stored["logs"][name]), int(name.rpartition("_s")[2])
        notebooks = stored["notebook_seeds"].get(name.rpartition("_s")[0]) == name
        return {"seed": f"{k}" + (" **(notebooks)**" if notebooks else ""), "file (MB)": [stored["file_mb"][name]],
                "selected at step (val loss)": [b["step"], b["val_loss"]], "train loss there": [b["train_loss"]],
                "wall time": b["wall"]}

    design_knockouts = {  # the right half of the design's Table 1: one knock-out per row, the last row two
        "baseline": ("temporal weights uniform", ["temporal_uniform"]), "ste": ("SDE maps set to one", ["spatial_one"]),
        "sde_q": ("SDE maps set to their mean", ["spatial_mean"]), "stif": ("q2m read zeroed", ["no_q2m"]),
        "ste+sde_q": ("m2q read zeroed", ["no_m2q"]),
        "full": ("gates at 0.5 / mask emptied", ["gate_half", "mask_empty"])}

    def design_table1_row(row: str) -> dict:
        label, names = design_knockouts[row]
        d = [t1[f"table1 full-ko-{n} minus full auc"] for n in names]
        both = len(d) > 1
        if both:  # "-0.024 / -0.022 (both include 0)": the two means, and the zero both intervals include
            assert all(i.low < 0 < i.high for i in d)
        return {"AUC [95%]": interval(t1[f"table1 {row} auc"]), "seed sd": [t1[f"table1 {row} seed sd"]],
                "d vs baseline [95%]": (interval(t1[f"table1 {row} minus baseline auc"]) if row != "baseline"
                                        else ""),
                "knock-out of full (paired by seed)": label,
                "d AUC vs full [95%]": [d[0].mean, d[1].mean, 0] if both else interval(d[0])}

    return [
        Table("data/MODEL_CARD.md", "| tracker | AUC | prec@20 | norm. prec | AO | SR0.5 | SR0.75 | aspect error "
              "(held frames) |", "val",
              {label: {"AUC": [overall[s]["auc"]]} | {c: [overall[s][k]] for c, k in columns.items()}
               for label, s in card_val.items()}),
        Table("data/MODEL_CARD.md", "| sequence | stif-full | stif-baseline | csrt | kcf |", "val",
              {seq: {f"stif-{s}" if s in ("full", "baseline") else s: [val[f"val {seq} {s} auc"]] for s in VAL_ROWS}
               for seq in sequences}
              | {"mean": {f"stif-{s}" if s in ("full", "baseline") else s: [val[f"val {s} auc"].mean]
                          for s in VAL_ROWS}}),
        Table("data/MODEL_CARD.md", "| row | seeds | AUC [95%] | AO | SR0.75 | seed sd (AUC) | d AUC vs baseline "
              "[95%] | ahead/behind | paper AO |", "table1", {row: table1_row(row) for row in VARIANTS}),
        Table("data/MODEL_CARD.md", "| knock-out | AUC [95%] | d AUC vs full [95%] | ahead/behind | resolved |",
              "table1", {KNOCKOUTS[n]: knockout_row(n) for n in KNOCKOUTS}),
        Table("data/MODEL_CARD.md", "| row | seed | file (MB) | selected at step (val loss) | train loss there | "
              "wall time | cached |", "logs",
              {f"{v} {name.rpartition('_s')[2]}": seed_row(name) for v in VARIANTS for name in stored["seeds"][v]},
              key=lambda cells: f"{cells[0]} {cells[1].split()[0]}"),
        Table("docs/design.md", "| tracker | AUC [95%] | AO | SR0.5 | SR0.75 | held frames | aspect error (held) | "
              "centre error (held) |", "val",
              {label: {"AUC [95%]": interval(val[f"val {s} auc"])} | {c: [overall[s][columns[c]]]
                                                                       for c in ("AO", "SR0.5", "SR0.75")}
               for label, s in design_val.items()}),
        Table("docs/design.md", "| row | AUC [95%] | seed sd | d vs baseline [95%] | | knock-out of full (paired by "
              "seed) | d AUC vs full [95%] |", "table1", {row: design_table1_row(row) for row in VARIANTS}),
    ]


# --- the checks ---------------------------------------------------------------------------------------------------

def agrees(text: str, value: float) -> bool:
    """``text`` is ``value`` printed to its own decimals."""
    decimals = len(text.partition(".")[2])
    return value is not None and math.isfinite(value) and abs(float(text) - value) <= 0.5 * 10 ** -decimals + 1e-9


def cells_of(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def table_problems(table: Table, text: str) -> list[str]:
    lines = text.split("\n")
    if table.header not in lines:
        return [f"{table.doc}: no table with the header {table.header!r} (rename it here too)"]
    start = lines.index(table.header)
    head, problems, seen = cells_of(table.header), [], set()
    for n in range(start + 2, len(lines)):
        if not lines[n].startswith("|"):
            break
        cells = cells_of(lines[n])
        key = table.key(cells) if table.key else cells[0]
        where = f"{table.doc}:{n + 1}: row {key!r}"
        if key not in table.rows:
            problems.append(f"{where}: not a row of the stored data (rows: {list(table.rows)})")
            continue
        seen.add(key)
        for column, expected in table.rows[key].items():
            cell = cells[head.index(column)].replace("**", "")
            if isinstance(expected, str):
                if cells[head.index(column)] != expected and cell != expected:
                    problems.append(f"{where}, {column}: {cells[head.index(column)]!r} written, stored {expected!r}")
                continue
            written = re.findall(rf"(?<![\w.]){NUMBER}", cell)
            if len(written) != len(expected) or not all(map(agrees, written, expected)):
                problems.append(f"{where}, {column}: {cell!r} written, stored "
                                f"{', '.join(f'{float(e):.4f}' for e in expected)}")
    problems += [f"{table.doc}: row {k!r} of the stored data is missing from the table under {table.header!r}"
                 for k in table.rows if k not in seen]
    return problems


def marked_problems(doc: str, text: str, values: dict) -> list[str]:
    problems = []
    for m in MARKED.finditer(text):
        where, key = f"{doc}:{text.count(chr(10), 0, m.start()) + 1}", " ".join(m["key"].split())
        if key not in values:
            problems.append(f"{where}: {m[0]!r} quotes {key!r}, which no stored file holds")
            continue
        value = values[key]
        if m["lo"] is not None:
            written, stored = [m["a"], m["lo"], m["hi"]], (list(value) if isinstance(value, Interval) else None)
        elif m["b"] is not None:
            written, stored = [m["a"], m["b"]], (list(value) if isinstance(value, Span) else None)
        else:
            written = [m["a"]]
            stored = None if isinstance(value, Span) else [value.mean if isinstance(value, Interval) else value]
        if stored is None:
            problems.append(f"{where}: {m[0]!r}: {key!r} is {type(value).__name__.lower()} {value}, "
                            "written as another form")
        elif not all(map(agrees, written, stored)):
            problems.append(f"{where}: {key!r}: {' '.join(written)} written, stored "
                            f"{', '.join(f'{float(s):.4f}' for s in stored)}")
    return problems


def command_problems(doc: str, text: str, families: set[str]) -> list[str]:
    flat = " ".join(text.split())
    return [f"{doc}: quotes the stored {f} values but does not name the command that makes them: {COMMANDS[f]!r}"
            for f in sorted(families) if COMMANDS[f] not in flat]


def problems(stored: dict, texts: dict[str, str]) -> list[str]:
    values, found = stored_values(stored), []
    for doc, text in texts.items():
        families = {family(" ".join(m["key"].split())) for m in MARKED.finditer(text)} & set(COMMANDS)
        found += marked_problems(doc, text, values)
        for table in (t for t in tables(stored) if t.doc == doc):
            found += table_problems(table, text)
            families.add(table.family)
        found += command_problems(doc, text, families)
    return found


@pytest.fixture(scope="module")
def stored():
    return load_stored()


@pytest.fixture(scope="module")
def texts():
    return {doc: (PROJECT / doc).read_text() for doc in DOCS}


def test_every_number_quoted_from_a_stored_file_is_the_stored_one(stored, texts):
    assert problems(stored, texts) == []


def test_the_documents_quote_enough_to_be_worth_checking(stored, texts):
    """The tables listed are all checked, and the text ties its key numbers to the files."""
    marked = {doc: len(MARKED.findall(text)) for doc, text in texts.items()}
    assert marked["docs/design.md"] >= 10 and marked["data/MODEL_CARD.md"] >= 15, marked
    assert {t.doc for t in tables(stored)} == {"docs/design.md", "data/MODEL_CARD.md"}


def edited(stored: dict, change) -> dict:
    out = copy.deepcopy(stored)
    change(out)
    return out


MUTATIONS = {  # a stored number edited: the document that quotes it fails, naming line and values
    "val SR0.75": (lambda s: s["val"]["stif-full-onnx"]["overall"].__setitem__("sr75", 0.345),
                   "data/MODEL_CARD.md:", "SR0.75: '0.335' written, stored 0.3450"),
    "val per-sequence AUC": (lambda s: s["val"]["csrt"]["per_sequence"]["deer"].__setitem__("auc", 0.7),
                             "docs/design.md:", "'val deer csrt auc': 0.694 written, stored 0.7000"),
    "table1 seed": (lambda s: s["table1"]["stif-stif-c2d97714-onnx-tre3"]["per_sequence"]["deer"].__setitem__(
        "auc", 0.9), "data/MODEL_CARD.md:", "row 'stif', AUC [95%]: '0.520 [0.405, 0.632]' written"),
    "training log": (lambda s: s["logs"]["stif_lite_full_s0"]["validation"][10].__setitem__("val_loss", 1.2),
                     "data/MODEL_CARD.md:", "row 'full 0', selected at step (val loss)"),
}


@pytest.mark.parametrize("name", MUTATIONS)
def test_an_edited_stored_number_fails_with_the_document_line_and_both_values(stored, texts, name):
    change, doc, message = MUTATIONS[name]
    found = problems(edited(stored, change), texts)
    assert any(p.startswith(doc) and message in p for p in found), found


def test_an_edited_document_fails_too(stored, texts):
    card = texts["data/MODEL_CARD.md"].replace("| kcf | 0.348 |", "| kcf | 0.349 |")
    design = texts["docs/design.md"].replace("| CSRT |", "| CSRT-2 |")
    found = problems(stored, texts | {"data/MODEL_CARD.md": card, "docs/design.md": design})
    assert any(re.match(r"data/MODEL_CARD\.md:\d+: row 'kcf', AUC: '0.349' written, stored 0.3479", p) for p in found)
    assert any("row 'CSRT-2': not a row" in p for p in found) and any("row 'CSRT' of the stored" in p for p in found)
    no_command = texts["docs/design.md"].replace(COMMANDS["table1"], "make report")
    assert any("does not name the command" in p for p in problems(stored, texts | {"docs/design.md": no_command}))
