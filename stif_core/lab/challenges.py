"""Per-challenge breakdown (the paper's Figures 6 and 11) from OTB attribute annotations, for notebook 09."""
from __future__ import annotations

import json

from ..paths import package_file

PAPER_CHALLENGES = {"occlusion": ["OCC"], "deformation": ["DEF"], "background clutter": ["BC"],
                    "rotation": ["IPR", "OPR"]}


def by_challenge(report: dict, key: str = "auc") -> dict[str, dict[str, float]]:
    """{challenge: {tracker: mean ``key`` over the sequences with that challenge}} from an ``evaluate`` report;
    challenges no evaluated sequence has are left out."""
    attrs = json.loads(package_file("otb_attributes.json").read_text())["sequences"]
    table = {}
    for challenge, codes in PAPER_CHALLENGES.items():
        row = {}
        for tracker, r in report.items():
            values = [s[key] for name, s in r["per_sequence"].items() if set(attrs.get(name, ())) & set(codes)]
            if values:
                row[tracker] = sum(values) / len(values)
        if row:
            table[f"{challenge} ({len(values)})"] = row
    return table
