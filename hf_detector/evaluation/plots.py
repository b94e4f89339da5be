"""Evaluation figures (PNG): confusion matrix, ROC, precision-recall, reliability, training curves, bars.

Uses matplotlib's object API on the non-interactive "Agg" canvas, never pyplot's global state, so it works
headless, in threads (Gradio, Trainer callbacks) and never leaks open figures.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 120
ArrayLike = Sequence[float] | np.ndarray
Curves = Mapping[str, tuple[ArrayLike, ArrayLike]]

# Keys in trainer_state.json log_history that are bookkeeping, not quality metrics.
_NON_METRIC_KEYS = {
    "epoch",
    "step",
    "total_flos",
    "train_runtime",
    "train_samples_per_second",
    "train_steps_per_second",
    "train_loss",
    "learning_rate",
    "grad_norm",
    "loss",
}
_NON_METRIC_SUFFIXES = (
    "_runtime",
    "_samples_per_second",
    "_steps_per_second",
    "_loss",
    "_tn",
    "_fp",
    "_fn",
    "_tp",
    "_n",
    "_threshold",
)


def _new_figure(width: float = 6.0, height: float = 5.0) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=DPI)
    fig.clear()  # Figure objects are not tracked by pyplot; clearing frees the artists right away
    return path


def _as_curves(references: ArrayLike | None, scores: ArrayLike | None, curves: Curves | None) -> Curves:
    if curves:
        return curves
    if references is None or scores is None:
        raise ValueError("pass references and scores, or curves={name: (references, scores)}")
    return {"model": (references, scores)}


def _both_classes(references: ArrayLike) -> bool:
    return len(np.unique(np.asarray(references))) == 2


def plot_confusion_matrix(
    cm: Sequence[Sequence[int]] | np.ndarray,
    path: str | Path,
    labels: Sequence[str] = ("real", "fake"),
    title: str = "Confusion matrix",
) -> Path:
    """Counts with row-normalised percentages (rows = true label, columns = predicted label)."""
    matrix = np.asarray(cm, dtype=np.int64)
    row_sums = matrix.sum(axis=1, keepdims=True)
    rates = np.divide(matrix, row_sums, out=np.zeros(matrix.shape), where=row_sums > 0)
    fig = _new_figure(5.0, 4.5)
    ax = fig.add_subplot()
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            colour = "white" if rates[i, j] > 0.5 else "black"
            ax.text(j, i, f"{matrix[i, j]}\n({rates[i, j]:.1%})", ha="center", va="center", color=colour)
    ax.set_xticks(range(len(labels)), labels=list(labels))
    ax.set_yticks(range(len(labels)), labels=list(labels))
    ax.set_xlabel("Predicted label")
    ax.set_ylabel("True label")
    ax.set_title(f"{title} (n={int(matrix.sum())})")
    return _save(fig, path)


def plot_roc(
    references: ArrayLike | None,
    scores: ArrayLike | None,
    path: str | Path,
    *,
    curves: Curves | None = None,
    title: str = "ROC curve (positive class: fake)",
) -> Path:
    """ROC curve(s) with AUROC in the legend; `curves` overlays several named (references, scores)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fig = _new_figure()
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance (AUROC = 0.5)")
    for name, (refs, probs) in _as_curves(references, scores, curves).items():
        if not _both_classes(refs):  # ROC undefined with one class; say so instead of crashing
            ax.plot([], [], label=f"{name} (single class, no ROC)")
            continue
        fpr, tpr, _ = roc_curve(refs, probs, pos_label=1)
        ax.plot(fpr, tpr, linewidth=2, label=f"{name} (AUROC = {roc_auc_score(refs, probs):.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("False positive rate (real called fake)")
    ax.set_ylabel("True positive rate (fake caught)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_precision_recall(
    references: ArrayLike | None,
    scores: ArrayLike | None,
    path: str | Path,
    *,
    curves: Curves | None = None,
    title: str = "Precision-recall curve (positive class: fake)",
) -> Path:
    """Precision-recall curve(s) with average precision in the legend and the prevalence baseline."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    fig = _new_figure()
    ax = fig.add_subplot()
    for name, (refs, probs) in _as_curves(references, scores, curves).items():
        if not _both_classes(refs):
            ax.plot([], [], label=f"{name} (single class, no PR curve)")
            continue
        precision, recall, _ = precision_recall_curve(refs, probs, pos_label=1)
        ap = average_precision_score(refs, probs)
        line = ax.step(recall, precision, where="post", linewidth=2, label=f"{name} (AP = {ap:.3f})")[0]
        prevalence = float(np.mean(np.asarray(refs) == 1))
        ax.axhline(prevalence, linestyle="--", linewidth=1, color=line.get_color(), alpha=0.6)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("Recall (fake caught)")
    ax.set_ylabel("Precision (flagged images that are fake)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    return _save(fig, path)


def plot_reliability(
    references: ArrayLike,
    scores: ArrayLike,
    path: str | Path,
    n_bins: int = 15,
    title: str = "Reliability diagram",
) -> Path:
    """Observed fraction of fakes vs mean predicted p(fake) per equal-width bin, with a score histogram."""
    refs = np.asarray(references, dtype=np.float64).ravel()
    probs = np.clip(np.asarray(scores, dtype=np.float64).ravel(), 0.0, 1.0)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(probs, edges[1:-1], right=True), 0, n_bins - 1)
    counts = np.bincount(which, minlength=n_bins)
    filled = counts > 0
    mean_score = np.bincount(which, weights=probs, minlength=n_bins)[filled] / counts[filled]
    frac_fake = np.bincount(which, weights=refs, minlength=n_bins)[filled] / counts[filled]

    # ECE as in detector_metrics: confidence of the predicted class (kept local: plots need no evaluate).
    predicted = probs >= 0.5
    confidence = np.where(predicted, probs, 1.0 - probs)
    correct = (predicted == (refs == 1)).astype(np.float64)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (confidence > lo) & (confidence <= hi)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())

    fig = _new_figure(6.0, 6.0)
    ax, hist = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect calibration")
    ax.plot(mean_score, frac_fake, marker="o", linewidth=2, label=f"model (ECE = {ece:.3f})")
    ax.set_ylim(0, 1)
    ax.set_ylabel("Observed fraction fake")
    ax.set_title(f"{title} ({n_bins} bins, n={probs.size})")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    hist.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="tab:blue", alpha=0.7)
    hist.set_xlim(0, 1)
    hist.set_xlabel("Predicted p(fake)")
    hist.set_ylabel("Count")
    return _save(fig, path)


def _load_log_history(state: str | Path | Mapping[str, Any]) -> list[dict[str, Any]]:
    if isinstance(state, str | Path):
        state = json.loads(Path(state).read_text(encoding="utf-8"))
    history = state.get("log_history", []) if isinstance(state, Mapping) else []
    return [entry for entry in history if isinstance(entry, Mapping)]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def plot_training_curves(
    trainer_state: str | Path | Mapping[str, Any], path: str | Path, title: str = "Training curves"
) -> Path:
    """Loss (train `loss`, `eval_loss`) and eval metrics in [0, 1] from transformers' trainer_state.json.

    The x axis is the global step when entries carry one, otherwise the epoch; missing keys, NaN values and
    an empty history produce a figure that says so rather than an exception.
    """
    history = _load_log_history(trainer_state)
    use_step = any(_is_number(entry.get("step")) for entry in history)
    x_key = "step" if use_step else "epoch"

    def series(key: str) -> tuple[list[float], list[float]]:
        points = [(e[x_key], e[key]) for e in history if _is_number(e.get(x_key)) and _is_number(e.get(key))]
        return [p[0] for p in points], [p[1] for p in points]

    metric_keys = sorted(
        {
            key
            for entry in history
            for key, value in entry.items()
            if key.startswith("eval_")
            and key not in _NON_METRIC_KEYS
            and not key.endswith(_NON_METRIC_SUFFIXES)
            and _is_number(value)
            and 0.0 <= value <= 1.0
        }
    )

    fig = _new_figure(10.0, 4.5)
    loss_ax, metric_ax = fig.subplots(1, 2)
    plotted_loss = False
    for key, label, style in (("loss", "train loss", "-"), ("eval_loss", "eval loss", "o-")):
        xs, ys = series(key)
        if xs:
            loss_ax.plot(xs, ys, style, linewidth=1.5, markersize=4, label=label)
            plotted_loss = True
    loss_ax.set_title("Loss")
    loss_ax.set_xlabel(x_key.capitalize())
    loss_ax.set_ylabel("Cross-entropy loss")
    loss_ax.grid(alpha=0.3)
    if plotted_loss:
        loss_ax.legend()
    else:
        loss_ax.text(0.5, 0.5, "no loss logged", ha="center", va="center", transform=loss_ax.transAxes)

    for key in metric_keys:
        xs, ys = series(key)
        metric_ax.plot(xs, ys, "o-", linewidth=1.5, markersize=4, label=key.removeprefix("eval_"))
    metric_ax.set_title("Evaluation metrics")
    metric_ax.set_xlabel(x_key.capitalize())
    metric_ax.set_ylabel("Value")
    metric_ax.set_ylim(0, 1.02)
    metric_ax.grid(alpha=0.3)
    if metric_keys:
        metric_ax.legend(fontsize="small", loc="lower right")
    else:
        metric_ax.text(
            0.5, 0.5, "no eval metrics logged", ha="center", va="center", transform=metric_ax.transAxes
        )
    fig.suptitle(title)
    return _save(fig, path)


def plot_bar(
    values: Mapping[str, float | None],
    path: str | Path,
    title: str,
    ylabel: str,
    ylim: tuple[float, float] | None = (0.0, 1.0),
) -> Path:
    """One bar per named value (robustness conditions, sources), value printed on each bar.

    None/NaN values (e.g. AUROC of a single-class slice) are drawn as an empty slot labelled "n/a".
    """
    names = list(values)
    heights = [float(v) if v is not None and math.isfinite(float(v)) else math.nan for v in values.values()]
    fig = _new_figure(max(5.0, 0.8 * len(names) + 2.0), 4.5)
    ax = fig.add_subplot()
    bars = ax.bar(range(len(names)), [0.0 if math.isnan(h) else h for h in heights], color="tab:blue")
    for bar, height in zip(bars, heights, strict=True):
        text = "n/a" if math.isnan(height) else f"{height:.3f}"
        ax.annotate(
            text,
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            xytext=(0, 2),
            textcoords="offset points",
            fontsize="small",
        )
    ax.set_xticks(
        range(len(names)),
        labels=names,
        rotation=30 if len(names) > 4 else 0,
        ha="right" if len(names) > 4 else "center",
    )
    if ylim is not None:
        ax.set_ylim(ylim[0], ylim[1] * 1.08)  # headroom for the value labels
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def save_all_plots(
    references: ArrayLike,
    scores: ArrayLike,
    threshold: float,
    out_dir: str | Path,
    trainer_state: str | Path | Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write confusion_matrix.png, roc.png, pr.png, reliability.png (+ training_curves.png) to out_dir."""
    from sklearn.metrics import confusion_matrix

    out = Path(out_dir)
    refs = np.asarray(references, dtype=np.int64).ravel()
    probs = np.asarray(scores, dtype=np.float64).ravel()
    cm = confusion_matrix(refs, (probs >= threshold).astype(np.int64), labels=[0, 1])
    paths = [
        plot_confusion_matrix(cm, out / "confusion_matrix.png", title=f"Confusion matrix @ {threshold:.2f}"),
        plot_roc(refs, probs, out / "roc.png"),
        plot_precision_recall(refs, probs, out / "pr.png"),
        plot_reliability(refs, probs, out / "reliability.png"),
    ]
    if trainer_state is not None:
        paths.append(plot_training_curves(trainer_state, out / "training_curves.png"))
    return paths
