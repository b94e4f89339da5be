"""Train the leave-out screening runs of the given recipes (scripts/report.py's experiments), one by one."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402

recipes = sys.argv[1].split(",")
only = sys.argv[2].split(",") if len(sys.argv) > 2 else None
for experiment in report.EXPERIMENTS:
    if experiment.group != "leaveout" or not any(experiment.name.startswith(f"lo_{r}_") for r in recipes):
        continue
    if only and not any(experiment.name.endswith(f"_{o}") for o in only):
        continue
    report.train_experiment(experiment, None, False, str(report.DATA))
