"""Detector metrics: the local `evaluate` module, thresholds, temperature scaling, Trainer glue.

The metric itself lives in ``detector_metrics.py`` and is loaded by path with ``evaluate.load`` (the Hub is
not reachable, and a local path never touches it: evaluate's LocalEvaluationModuleFactory only copies the
file into its module cache). Plots live in ``hf_detector.metrics.plots`` (matplotlib, imported on demand).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..data.labels import LABEL2ID

if TYPE_CHECKING:
    import evaluate

__all__ = [
    "METRIC_PATH",
    "choose_threshold",
    "compute_metrics",
    "fit_temperature",
    "hardest_source_pair",
    "load_metric",
    "make_compute_metrics",
    "softmax",
    "source_pair_auroc",
]

METRIC_PATH: Path = Path(__file__).resolve().with_name("detector_metrics.py")

ArrayLike = Sequence[float] | np.ndarray


@functools.lru_cache(maxsize=1)
def load_metric() -> evaluate.EvaluationModule:
    """Load (once per process) the detector metric by path.

    keep_in_memory=True: no Arrow cache files or file locks, so concurrent processes sharing a home
    directory cannot collide, and nothing is written besides evaluate's copy of the script.
    """
    import evaluate  # lazy: importing evaluate/datasets costs ~1 s and most callers never need it

    return evaluate.load(str(METRIC_PATH), keep_in_memory=True)


@functools.lru_cache(maxsize=1)
def _scores_module() -> Any:
    """detector_metrics.py executed with SCORES_ONLY = True: its functions, not its evaluate.Metric class."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("hf_detector_detector_metrics_scores", METRIC_PATH)
    module = importlib.util.module_from_spec(spec)
    module.SCORES_ONLY = True
    spec.loader.exec_module(module)
    return module


def compute_metrics(references: ArrayLike, scores: ArrayLike, threshold: float = 0.5) -> dict[str, Any]:
    """All detector metrics from labels (0 real, 1 fake) and p(fake); predictions = scores >= threshold."""
    refs = np.asarray(references, dtype=np.int64).ravel()
    probs = np.asarray(scores, dtype=np.float64).ravel()
    if refs.shape != probs.shape:
        raise ValueError(f"references {refs.shape} and scores {probs.shape} differ in length")
    preds = (probs >= threshold).astype(np.int64)
    # the metric module's own function, without `evaluate` (which imports torch and transformers): the
    # same numbers as load_metric().compute(...), and `hf-detector evaluate` stays on the light runtime
    return _scores_module().detector_metrics(
        predictions=preds.tolist(), references=refs.tolist(), scores=probs.tolist(), threshold=float(threshold))


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax (shift by the max so large logits do not overflow)."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def scores_from_logits(logits: np.ndarray) -> np.ndarray:
    """p(fake) from (N, 2) logits (softmax column 1), or from (N,)/(N, 1) single logits (sigmoid)."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim == 2 and logits.shape[1] == 2:
        return softmax(logits, axis=1)[:, 1]
    if logits.ndim == 1 or (logits.ndim == 2 and logits.shape[1] == 1):
        return 1.0 / (1.0 + np.exp(-logits.ravel()))
    raise ValueError(f"expected logits of shape (N, 2) or (N,), got {logits.shape}")


def choose_threshold(references: ArrayLike, scores: ArrayLike) -> float:
    """Threshold on p(fake) maximising Youden's J (= 2 * balanced accuracy - 1) on validation data.

    The returned value is the midpoint between the best ROC cut and the next lower score, so it gives the
    same validation predictions (`scores >= t`) while leaving margin on both sides for unseen data.
    Falls back to 0.5 when the references hold a single class (no ROC curve exists).
    """
    from sklearn.metrics import roc_curve

    refs = np.asarray(references, dtype=np.int64).ravel()
    probs = np.asarray(scores, dtype=np.float64).ravel()
    if len(np.unique(refs)) < 2:
        return 0.5
    fpr, tpr, thresholds = roc_curve(refs, probs, pos_label=1, drop_intermediate=False)
    best = int(np.argmax(tpr - fpr))  # first maximum = highest threshold among ties
    cut = thresholds[best]
    below = probs[probs < cut]
    if not np.isfinite(cut):  # "predict nothing fake" won: put the cut just above every score
        return float(min(1.0, np.nextafter(probs.max(), np.inf)))
    if below.size == 0:
        return float(cut)
    return float((cut + below.max()) / 2.0)


def fit_temperature(
    logits: np.ndarray, references: ArrayLike, bounds: tuple[float, float] = (0.05, 20.0)
) -> float:
    """Temperature T minimising the NLL of softmax(logits / T) (Guo et al., 2017), T in `bounds`.

    T > 1 softens over-confident logits; the argmax (and so accuracy/ROC) is unchanged. Fit it on the
    validation split, never on test.
    """
    from scipy.optimize import minimize

    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"expected (N, C) logits, got shape {z.shape}")
    y = np.asarray(references, dtype=np.int64).ravel()
    rows = np.arange(len(y))

    def nll_and_grad(params: np.ndarray) -> tuple[float, np.ndarray]:
        t = float(params[0])
        log_p = _log_softmax(z / t)
        nll = -log_p[rows, y].mean()
        # d/dT of -log softmax(z/T)_y = (z_y - E_p[z]) / T^2
        expected_z = (np.exp(log_p) * z).sum(axis=1)
        grad = ((z[rows, y] - expected_z) / t**2).mean()
        return float(nll), np.array([grad])

    result = minimize(nll_and_grad, x0=np.array([1.0]), jac=True, method="L-BFGS-B", bounds=[bounds])
    return float(np.clip(result.x[0], *bounds))


def make_compute_metrics(threshold: float = 0.5) -> Callable[[Any], dict[str, float]]:
    """A `transformers.Trainer(compute_metrics=...)` callable: EvalPrediction -> flat scalar metrics.

    Trainer logs every value, so the confusion matrix becomes tn/fp/fn/tp and undefined metrics (None)
    become NaN (keys stay present, so `metric_for_best_model` never hits a KeyError).
    """

    def _compute(eval_pred: Any) -> dict[str, float]:
        if isinstance(eval_pred, tuple | list):
            predictions, labels = eval_pred[0], eval_pred[1]
        else:
            predictions, labels = eval_pred.predictions, eval_pred.label_ids
        if isinstance(predictions, tuple | list):  # models returning extra outputs: logits come first
            predictions = predictions[0]
        scores = scores_from_logits(np.asarray(predictions))
        raw = compute_metrics(np.asarray(labels), scores, threshold=threshold)
        out: dict[str, float] = {}
        for key, value in raw.items():
            if key == "confusion_matrix":
                (tn, fp), (fn, tp) = value
                out.update(tn=int(tn), fp=int(fp), fn=int(fn), tp=int(tp))
            elif key == "n":
                out[key] = int(value)
            else:
                out[key] = math.nan if value is None else float(value)
        return out

    return _compute


def per_source_breakdown(labels: np.ndarray, scores: np.ndarray, threshold: float,
                         sources: list[str]) -> dict[str, dict[str, float]]:
    predicted = (np.asarray(scores) >= threshold).astype(int)
    table = {}
    for name in sorted(set(sources)):
        mask = np.array([s == name for s in sources])
        table[name] = {"n": int(mask.sum()),
                       "accuracy": float((predicted[mask] == np.asarray(labels)[mask]).mean()),
                       "fraction_predicted_fake": float(predicted[mask].mean())}
    return table


def source_pair_auroc(labels: ArrayLike, scores: ArrayLike, sources: list[str]) -> dict[str, dict[str, float]]:
    """AUROC of every real source against every fake source: {real: {fake: auroc}}.

    The pooled AUROC averages over pairs that are easy (small soft photos vs sharp generated portraits)
    and pairs that are hard (real FFHQ portraits vs the StyleGAN faces made to imitate them); this table
    shows which real photos the detector confuses with which generator, without a threshold.
    """
    from sklearn.metrics import roc_auc_score

    labels, scores, sources = np.asarray(labels), np.asarray(scores, dtype=float), np.asarray(sources)
    real_id, fake_id = LABEL2ID["real"], LABEL2ID["fake"]
    table: dict[str, dict[str, float]] = {}
    for real in sorted(set(sources[labels == real_id])):
        real_scores = scores[(labels == real_id) & (sources == real)]
        table[str(real)] = {}
        for fake in sorted(set(sources[labels == fake_id])):
            fake_scores = scores[(labels == fake_id) & (sources == fake)]
            pair = np.concatenate([np.zeros(len(real_scores)), np.ones(len(fake_scores))])
            table[str(real)][str(fake)] = float(roc_auc_score(pair, np.concatenate([real_scores, fake_scores])))
    return table


def hardest_source_pair(table: dict[str, dict[str, float]]) -> tuple[float, str, str] | None:
    """(auroc, real, fake) of the least separated pair of a `source_pair_auroc` table, None if empty."""
    pairs = [(auroc, real, fake) for real, row in table.items() for fake, auroc in row.items()]
    return min(pairs) if pairs else None
