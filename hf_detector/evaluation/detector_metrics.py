"""Real-vs-fake face detector metrics as a local `evaluate` module.

Loaded by path (``evaluate.load(".../detector_metrics.py")``): evaluate copies this single file into its
module cache, so it must stay self-contained (no relative imports, only evaluate/datasets/numpy/sklearn).

`hf_detector.evaluation.metrics` runs the same `detector_metrics` function without evaluate (which imports
torch and transformers): it executes this file with `SCORES_ONLY = True` set, which skips the Metric class.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

_DESCRIPTION = """\
Binary metrics for telling real face photos (label 0) from AI-generated ones (label 1, the positive class).
Threshold metrics (accuracy, balanced accuracy, precision, recall, F1, confusion matrix, per-class recall)
use `predictions`; ranking metrics (ROC AUC, average precision) and calibration metrics (ECE, log loss,
Brier score) use `scores`, the predicted probability that the image is fake.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (`list` of `int`): predicted labels, 0 = real, 1 = fake.
    references (`list` of `int`): ground-truth labels, 0 = real, 1 = fake.
    scores (`list` of `float`): predicted p(fake) in [0, 1].
    threshold (`float`, optional): when given, `predictions` are recomputed as `scores >= threshold`
        (so one call evaluates an operating point chosen on validation data) and it is echoed back.
Returns:
    accuracy, balanced_accuracy, precision, recall, f1 (fake = positive), recall_real, recall_fake,
    roc_auc, average_precision, ece (15 equal-width bins over the confidence of the predicted class,
    predicted class = argmax of the scores), log_loss, brier, confusion_matrix ([[TN, FP], [FN, TP]]), n,
    and threshold when given. Undefined values (e.g. ROC AUC with a single class in `references`) are None.
Examples:
    >>> metric = evaluate.load("hf_detector/metrics/detector_metrics.py")
    >>> out = metric.compute(predictions=[0, 1, 1], references=[0, 1, 0], scores=[0.2, 0.9, 0.6])
    >>> round(out["accuracy"], 3), out["confusion_matrix"]
    (0.667, [[1, 1], [0, 1]])
"""

_CITATION = """\
@article{scikit-learn,
  title={Scikit-learn: Machine Learning in {P}ython},
  author={Pedregosa, F. and Varoquaux, G. and Gramfort, A. and others},
  journal={Journal of Machine Learning Research},
  volume={12},
  pages={2825--2830},
  year={2011}
}
@inproceedings{guo2017calibration,
  title={On Calibration of Modern Neural Networks},
  author={Guo, Chuan and Pleiss, Geoff and Sun, Yu and Weinberger, Kilian Q.},
  booktitle={ICML},
  year={2017}
}
"""

ECE_BINS = 15


def expected_calibration_error(references: np.ndarray, scores: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """ECE of Guo et al. (2017): bins (lo, hi] over the confidence of the predicted class.

    The predicted class is the argmax of (1 - p, p) with ties going to fake, so the value is a property of
    the scores alone and does not move with the decision threshold.
    """
    references = np.asarray(references, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    predicted = (scores >= 0.5).astype(np.int64)
    confidence = np.where(predicted == 1, scores, 1.0 - scores)
    correct = (predicted == references).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (confidence > lo) & (confidence <= hi)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def _clean(value: float) -> float | None:
    """NaN/inf -> None so the result dict stays JSON-serialisable."""
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def _values(y_true, y_pred, y_score, labels, prf, both_classes) -> dict:
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        # With one class present sklearn averages the recall of the classes present (and warns).
        "balanced_accuracy": _clean(balanced_accuracy_score(y_true, y_pred)),
        "precision": _clean(precision_score(y_true, y_pred, pos_label=1, average="binary", **prf)),
        "recall": _clean(recall_score(y_true, y_pred, pos_label=1, average="binary", **prf)),
        "f1": _clean(f1_score(y_true, y_pred, pos_label=1, average="binary", **prf)),
        "recall_real": _clean(recall_score(y_true, y_pred, pos_label=0, average="binary", **prf)),
        "recall_fake": _clean(recall_score(y_true, y_pred, pos_label=1, average="binary", **prf)),
        # Ranking metrics need both classes; sklearn raises or warns otherwise.
        "roc_auc": _clean(roc_auc_score(y_true, y_score)) if both_classes else None,
        "average_precision": _clean(average_precision_score(y_true, y_score)) if both_classes else None,
        "ece": expected_calibration_error(y_true, y_score),
        "log_loss": _clean(log_loss(y_true, np.clip(y_score, 0.0, 1.0), labels=labels)),
        "brier": _clean(brier_score_loss(y_true, y_score, pos_label=1)),
    }


def detector_metrics(predictions, references, scores, threshold: float | None = None) -> dict:
    """The metrics of the module docstring, from lists or arrays (what `DetectorMetrics._compute` returns)."""
    y_true = np.asarray(references, dtype=np.int64)
    y_score = np.asarray(scores, dtype=np.float64)
    if threshold is not None:
        y_pred = (y_score >= float(threshold)).astype(np.int64)
    else:
        y_pred = np.asarray(predictions, dtype=np.int64)
    # labels=[0, 1] keeps the 2x2 shape and per-class values defined even when a class is absent.
    labels = [0, 1]
    # zero_division=nan: an undefined precision/recall is reported as None rather than a fake 0.
    prf = {"labels": labels, "zero_division": np.nan}
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y_true, y_pred, labels=labels).ravel())
    both_classes = len(np.unique(y_true)) == 2
    with warnings.catch_warnings():
        # Single-class batches (tiny eval sets, per-source slices) are expected; the values say so.
        warnings.simplefilter("ignore", UserWarning)
        result = _values(y_true, y_pred, y_score, labels, prf, both_classes)
    result["confusion_matrix"] = [[tn, fp], [fn, tp]]
    result["n"] = int(y_true.size)
    if threshold is not None:
        result["threshold"] = float(threshold)
    return result


if not globals().get("SCORES_ONLY"):  # evaluate's loader: the Metric class (hf_detector's light path skips it)
    import datasets
    import evaluate

    @evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
    class DetectorMetrics(evaluate.Metric):
        """Accuracy, ranking and calibration metrics of a real (0) vs fake (1) face detector."""

        def _info(self) -> evaluate.MetricInfo:
            return evaluate.MetricInfo(
                description=_DESCRIPTION,
                citation=_CITATION,
                inputs_description=_KWARGS_DESCRIPTION,
                features=datasets.Features(
                    {
                        "predictions": datasets.Value("int64"),
                        "references": datasets.Value("int64"),
                        "scores": datasets.Value("float64"),
                    }
                ),
                reference_urls=["https://scikit-learn.org/stable/api/sklearn.metrics.html"],
            )

        def _compute(self, predictions, references, scores, threshold: float | None = None) -> dict:
            return detector_metrics(predictions, references, scores, threshold)
