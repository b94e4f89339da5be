"""Print docs/recipe_screening.md's rows for finished leave-out runs: `python scripts/screen_rows.py lite1 local5`."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402

for recipe in sys.argv[1:]:
    for run in sorted(report.RUNS.glob(f"lo_{recipe}_*")):
        if run.name[len(f"lo_{recipe}_"):] not in ("none", "diffusion", *report.LEAVE_OUT.values()):
            continue  # another recipe whose name starts with this one's (lite0 vs lite0_seed43)
        if not (run / "metrics.json").exists():
            continue
        s = report.leave_out_summary(run, json.loads((run / "metrics.json").read_text()))
        cells = [f"**{report.fmt(s['per_source'].get(x), 2)}**" if x in s["holdout"]
                 else report.fmt(s["per_source"].get(x), 2) for x in (*report.REAL_SOURCES, *report.FAKE_SOURCES)]
        print("| " + " | ".join([run.name[3:], *cells, report.fmt(s["id_auroc"]), report.fmt(s["heldout_auroc"]),
                                 report.fmt(s.get("ece")), report.fmt(s.get("band_share")),
                                 report.fmt(s.get("accuracy_outside"))]) + " |")
