"""The text of the CPU books' key tables (arlib.book.report / compare / claims) on one results store, as JSON:
what a refactoring must leave unchanged (issue 23's equality check). Run it with two checkouts first on
``PYTHONPATH`` and the same ``ARLIB_RESULTS`` (e.g. a worktree's committed results), then compare the files::

    PYTHONPATH=/tmp/before05 ARLIB_RESULTS=/tmp/before05/results .venv/bin/python benchmarks/book_tables_text.py /tmp/before.json
    ARLIB_RESULTS=/tmp/before05/results .venv/bin/python benchmarks/book_tables_text.py /tmp/after.json
    python -c "import json; a, b = (json.load(open(f)) for f in ('/tmp/before.json', '/tmp/after.json')); \
        print([k for k in a if k != 'arlib' and a[k] != b.get(k)])"
"""

import json
import sys
import warnings

import pandas as pd

import arlib
from arlib.book import claims, compare, report

warnings.filterwarnings("ignore")

out = {"arlib": arlib.__file__}


def text(x):
    if isinstance(x, (pd.DataFrame, pd.Series)):
        return x.to_csv()
    if isinstance(x, tuple):
        return [text(v) for v in x]
    if isinstance(x, dict):
        return {str(k): text(v) for k, v in x.items()}
    return repr(x)


def rec(name, f, *a, **k):
    try:
        out[name] = text(f(*a, **k))
    except Exception as e:
        out[name] = "ERROR " + type(e).__name__ + ": " + str(e)[:300]


for prof in ("cpu", "cpu-high"):
    frames = {}
    for exp in ("pgd", "fgsm", "deep", "spectral"):
        try:
            frames[exp] = report.collect(prof, exp, "cifar10", ensure=False)
        except Exception as e:
            out[f"{prof}/collect/{exp}"] = "ERROR " + repr(e)[:300]
            continue
        df = frames[exp]
        drop = [c for c in df.columns if df[c].map(lambda v: isinstance(v, (dict, list))).any()]
        out[f"{prof}/collect/{exp}"] = df.drop(columns=drop).to_csv()
        rec(f"{prof}/runs_table/{exp}", report.runs_table, df)
        rec(f"{prof}/summarise/{exp}", report.summarise, df)
        rec(f"{prof}/provenance_note/{exp}", report.provenance_note, df)
        rec(f"{prof}/margin_table/{exp}", report.margin_table, df)
        rec(f"{prof}/training_history/{exp}", report.training_history, df)
        rec(f"{prof}/bound_table/{exp}", report.bound_table, df)
        rec(f"{prof}/bound_layers/{exp}", report.bound_layers, df)
    if "pgd" in frames:
        rec(f"{prof}/b2_table", compare.b2_table, frames["pgd"])
    rec(f"{prof}/settings_table", compare.settings_table, prof)
    rec(f"{prof}/datasets_overview", compare.datasets_overview, prof)
    rec(f"{prof}/ledger", claims.ledger, prof, "cifar10", ensure=False)
    if "spectral" in frames and "pgd" in frames:
        rec(f"{prof}/spectral_side_by_side", compare.spectral_side_by_side, frames["spectral"], frames["pgd"])
    rec(f"{prof}/fit_summary", claims.fit_summary, frames)
rec("sizing_probes", report.sizing_probes)
json.dump(out, open(sys.argv[1], "w"), indent=1, sort_keys=True)
print(len(out), "entries;", sum(str(v).startswith("ERROR") for v in out.values()), "errors")
