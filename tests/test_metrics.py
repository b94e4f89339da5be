"""Detector metrics: sklearn agreement, ECE, offline loading, thresholds, temperature, Trainer glue, plots."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

from hf_detector.evaluation import plots
from hf_detector.evaluation.metrics import (
    METRIC_PATH,
    choose_threshold,
    compute_metrics,
    fit_temperature,
    load_metric,
    make_compute_metrics,
    softmax,
)

# Fixed, unbalanced, with ties and errors of both kinds.
REFS = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 1, 0])
SCORES = np.array(
    [
        0.05,
        0.20,
        0.35,
        0.55,
        0.10,
        0.70,
        0.90,
        0.65,
        0.40,
        0.99,
        0.80,
        0.50,
        0.30,
        0.85,
        0.45,
        0.75,
        0.50,
        0.60,
        0.95,
        0.15,
    ]
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    data = Path(path).read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 5_000  # a real rendered figure, not an empty canvas


def test_metric_path_is_inside_package() -> None:
    assert METRIC_PATH.is_file()
    assert METRIC_PATH.parent.name == "evaluation"
    assert METRIC_PATH.parent.parent.name == "hf_detector"


@pytest.mark.parametrize("threshold", [0.5, 0.42])
def test_metrics_match_sklearn(threshold: float) -> None:
    out = compute_metrics(REFS, SCORES, threshold=threshold)
    preds = (SCORES >= threshold).astype(int)
    expected = {
        "accuracy": skm.accuracy_score(REFS, preds),
        "balanced_accuracy": skm.balanced_accuracy_score(REFS, preds),
        "precision": skm.precision_score(REFS, preds, pos_label=1),
        "recall": skm.recall_score(REFS, preds, pos_label=1),
        "f1": skm.f1_score(REFS, preds, pos_label=1),
        "recall_fake": skm.recall_score(REFS, preds, pos_label=1),
        "recall_real": skm.recall_score(REFS, preds, pos_label=0),
        "roc_auc": skm.roc_auc_score(REFS, SCORES),
        "average_precision": skm.average_precision_score(REFS, SCORES),
        "log_loss": skm.log_loss(REFS, SCORES),
        "brier": skm.brier_score_loss(REFS, SCORES),
    }
    for key, value in expected.items():
        assert out[key] == pytest.approx(value, abs=1e-9), key
    assert out["confusion_matrix"] == skm.confusion_matrix(REFS, preds, labels=[0, 1]).tolist()
    (tn, fp), (fn, tp) = out["confusion_matrix"]
    assert tn + fp + fn + tp == out["n"] == len(REFS)
    assert out["threshold"] == threshold
    json.dumps(out)  # serialisable as-is (results files, model card)


def test_metric_module_direct_compute_uses_given_predictions() -> None:
    preds = np.array([1 - r for r in REFS])  # deliberately all wrong, independent of the scores
    out = load_metric().compute(predictions=preds, references=REFS, scores=SCORES)
    assert out["accuracy"] == 0.0
    assert "threshold" not in out
    assert out["roc_auc"] == pytest.approx(skm.roc_auc_score(REFS, SCORES), abs=1e-9)


def test_ece_hand_computed() -> None:
    refs = [1, 0, 1, 0]
    scores = [0.9, 0.2, 0.3, 0.6]
    # predicted class / confidence / correct: fake .9 yes; real .8 yes; real .7 no; fake .6 no.
    # 15 bins of width 1/15 over (lo, hi]: .9 -> (.8667,.9333], .8 -> (.7333,.8], .7 -> (.6667,.7333],
    # .6 -> (.5333,.6]; one sample per bin, so ECE = mean |correct - confidence|.
    expected = (abs(1 - 0.9) + abs(1 - 0.8) + abs(0 - 0.7) + abs(0 - 0.6)) / 4
    assert compute_metrics(refs, scores)["ece"] == pytest.approx(expected, abs=1e-12)

    # Two samples sharing a bin average before the absolute value (that is what makes it ECE).
    refs, scores = [1, 0], [0.95, 0.96]  # both predicted fake with confidence in (.9333, 1]
    assert compute_metrics(refs, scores)["ece"] == pytest.approx(abs(0.5 - 0.955), abs=1e-12)


def test_ece_zero_when_perfectly_calibrated() -> None:
    refs = [1, 1, 1, 0] * 5  # p(fake) = 0.75 everywhere and 75% are fake: predicted fake, 75% correct
    assert compute_metrics(refs, [0.75] * 20)["ece"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("label", [0, 1])
def test_single_class_does_not_crash(label: int) -> None:
    refs = [label] * 6
    scores = [0.1, 0.3, 0.6, 0.8, 0.45, 0.9]
    out = compute_metrics(refs, scores)
    assert out["roc_auc"] is None and out["average_precision"] is None
    absent = "recall_fake" if label == 0 else "recall_real"
    assert out[absent] is None
    assert out["n"] == 6
    json.dumps(out, allow_nan=False)  # no NaN anywhere
    trainer_out = make_compute_metrics()((np.log(np.c_[1 - np.array(scores), scores]), np.array(refs)))
    assert math.isnan(trainer_out["roc_auc"])


def test_metric_loads_by_path_offline(tmp_path: Path) -> None:
    """A fresh process with every socket refused and offline flags set loads and computes the metric."""
    script = textwrap.dedent(
        f"""
        import socket
        def refuse(*args, **kwargs):
            raise OSError("network disabled in test")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        import evaluate
        metric = evaluate.load({str(METRIC_PATH)!r}, keep_in_memory=True)
        out = metric.compute(predictions=[0, 1, 1, 0], references=[0, 1, 0, 0], scores=[0.1, 0.9, 0.7, 0.2])
        assert out["confusion_matrix"] == [[2, 1], [0, 1]], out
        print("OK", out["roc_auc"])
        """
    )
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HF_EVALUATE_OFFLINE="1",
        HF_HOME=str(tmp_path / "hf_home"),
        HF_MODULES_CACHE=str(tmp_path / "modules"),
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "OK 1.0" in proc.stdout


def test_choose_threshold_separates() -> None:
    refs = np.array([0, 0, 0, 0, 1, 1, 1])
    scores = np.array([0.05, 0.1, 0.6, 0.62, 0.7, 0.8, 0.95])  # separable, but not at 0.5
    threshold = choose_threshold(refs, scores)
    assert 0.62 < threshold <= 0.7
    assert np.array_equal((scores >= threshold).astype(int), refs)
    assert compute_metrics(refs, scores, threshold)["balanced_accuracy"] == 1.0
    assert choose_threshold([1, 1], [0.2, 0.9]) == 0.5  # single class: no ROC, fall back


def test_choose_threshold_maximises_balanced_accuracy() -> None:
    threshold = choose_threshold(REFS, SCORES)
    best = max(skm.balanced_accuracy_score(REFS, (SCORES >= t).astype(int)) for t in np.unique(SCORES))
    assert skm.balanced_accuracy_score(REFS, (SCORES >= threshold).astype(int)) == pytest.approx(best)


def _nll(logits: np.ndarray, refs: np.ndarray, temperature: float) -> float:
    probs = softmax(logits / temperature, axis=1)
    return float(-np.mean(np.log(probs[np.arange(len(refs)), refs])))


def test_fit_temperature_softens_overconfident_logits() -> None:
    rng = np.random.default_rng(0)
    refs = rng.integers(0, 2, 400)
    margin = (2 * refs - 1) * 1.0 + rng.normal(0.0, 1.5, 400)  # ~75% accurate
    logits = np.c_[np.zeros(400), margin] * 6.0  # then blown up: over-confident
    temperature = fit_temperature(logits, refs)
    assert 1.0 < temperature <= 20.0
    assert _nll(logits, refs, temperature) < _nll(logits, refs, 1.0)
    # The optimum is the optimum: nudging T either way does not help.
    assert _nll(logits, refs, temperature) <= _nll(logits, refs, temperature * 1.05) + 1e-9
    assert _nll(logits, refs, temperature) <= _nll(logits, refs, temperature / 1.05) + 1e-9
    # Under-confident logits want T < 1, and the bounds hold.
    assert fit_temperature(logits / 50.0, refs) < 1.0
    assert 0.05 <= fit_temperature(np.c_[np.zeros(4), [-9.0, -9, 9, 9]], [0, 0, 1, 1]) <= 20.0


def test_softmax_is_stable() -> None:
    probs = softmax(np.array([[1000.0, 0.0], [0.0, 0.0]]), axis=1)
    assert np.allclose(probs, [[1.0, 0.0], [0.5, 0.5]])


def test_make_compute_metrics_on_eval_prediction() -> None:
    from transformers import EvalPrediction

    logits = np.c_[np.zeros(len(SCORES)), np.log(SCORES / (1 - SCORES))]  # softmax[:, 1] == SCORES
    fn = make_compute_metrics(threshold=0.5)
    out = fn(EvalPrediction(predictions=logits, label_ids=REFS))
    reference = compute_metrics(REFS, SCORES, 0.5)
    assert out["roc_auc"] == pytest.approx(reference["roc_auc"], abs=1e-9)
    assert out["accuracy"] == pytest.approx(reference["accuracy"], abs=1e-9)
    (tn, fp), (fn_, tp) = reference["confusion_matrix"]
    assert (out["tn"], out["fp"], out["fn"], out["tp"]) == (tn, fp, fn_, tp)
    assert "confusion_matrix" not in out
    assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in out.values())
    # Models returning (logits, extra) and plain tuples work too.
    assert fn(((logits, np.zeros(3)), REFS))["roc_auc"] == pytest.approx(reference["roc_auc"])


def _trainer_state() -> dict:
    history = []
    for step in range(10, 110, 10):
        history.append(
            {"loss": 0.7 * math.exp(-step / 60), "learning_rate": 1e-4, "epoch": step / 50, "step": step}
        )
        if step % 50 == 0:
            history.append(
                {
                    "eval_loss": 0.6 * math.exp(-step / 80),
                    "eval_accuracy": 0.6 + step / 400,
                    "eval_roc_auc": 0.7 + step / 500,
                    "eval_runtime": 1.2,
                    "epoch": step / 50,
                    "step": step,
                    "eval_tp": 40,
                }
            )
    history.append({"train_runtime": 12.0, "train_loss": 0.4, "epoch": 2.0, "step": 100})
    return {"global_step": 100, "log_history": history}


def test_plots_write_pngs(tmp_path: Path) -> None:
    state_path = tmp_path / "trainer_state.json"
    state_path.write_text(json.dumps(_trainer_state()))
    written = plots.save_all_plots(REFS, SCORES, 0.5, tmp_path / "figs", trainer_state=state_path)
    assert [p.name for p in written] == [
        "confusion_matrix.png",
        "roc.png",
        "pr.png",
        "reliability.png",
        "training_curves.png",
    ]
    for path in written:
        assert_png(path)

    other = (REFS, np.clip(SCORES + 0.1, 0, 1))
    assert_png(
        plots.plot_roc(None, None, tmp_path / "roc_multi.png", curves={"a": (REFS, SCORES), "b": other})
    )
    assert_png(
        plots.plot_precision_recall(
            None, None, tmp_path / "pr_multi.png", curves={"a": (REFS, SCORES), "b": other}
        )
    )
    assert_png(
        plots.plot_bar(
            {"clean": 0.97, "jpeg q50": 0.91, "blur": 0.88, "single": None},
            tmp_path / "bar.png",
            title="AUROC under perturbations",
            ylabel="AUROC",
        )
    )


def test_plot_training_curves_robust_to_missing_keys(tmp_path: Path) -> None:
    assert_png(plots.plot_training_curves(_trainer_state(), tmp_path / "dict.png"))
    assert_png(plots.plot_training_curves({"log_history": []}, tmp_path / "empty.png"))
    assert_png(plots.plot_training_curves({}, tmp_path / "no_history.png"))
    epoch_only = {
        "log_history": [
            {"loss": 0.5, "epoch": 1.0},
            {"eval_accuracy": 0.8, "epoch": 1.0},
            {"eval_f1": float("nan"), "epoch": 2.0},
        ]
    }
    assert_png(plots.plot_training_curves(epoch_only, tmp_path / "epoch_only.png"))


def test_single_class_plots_do_not_crash(tmp_path: Path) -> None:
    refs, scores = [1, 1, 1], [0.2, 0.7, 0.9]
    written = plots.save_all_plots(refs, scores, 0.5, tmp_path)
    assert len(written) == 4
    for path in written:
        assert_png(path)


def test_plots_leave_no_open_pyplot_figures(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    before = len(plt.get_fignums())
    plots.save_all_plots(REFS, SCORES, 0.5, tmp_path)
    assert len(plt.get_fignums()) == before


def test_source_pair_auroc_separates_the_confused_pair() -> None:
    """Each real source against each fake source: a pair the scores mix up reads 0.5, a clean one 1.0."""
    from hf_detector.evaluation.metrics import source_pair_auroc

    labels = [0, 0, 0, 0, 1, 1, 1, 1]
    sources = ["studio", "studio", "phone", "phone", "gan", "gan", "diffusion", "diffusion"]
    scores = [0.6, 0.8, 0.1, 0.2, 0.7, 0.7, 0.9, 0.95]
    table = source_pair_auroc(labels, scores, sources)
    assert set(table) == {"studio", "phone"} and set(table["studio"]) == {"gan", "diffusion"}
    assert table["phone"] == {"gan": 1.0, "diffusion": 1.0}
    assert table["studio"]["diffusion"] == 1.0
    assert table["studio"]["gan"] == pytest.approx(0.5)  # 0.6 < 0.7 < 0.8: one win, one loss per fake
    json.dumps(table)  # plain str keys and floats: it goes into the evaluate JSON as is
    from hf_detector.evaluation.metrics import hardest_source_pair

    assert hardest_source_pair(table) == (pytest.approx(0.5), "studio", "gan")
    assert hardest_source_pair({}) is None
