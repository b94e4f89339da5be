"""Stage 6, evaluation: the metrics (`metrics`, the local `evaluate` module `detector_metrics`), plots,
`evaluate` (a labelled folder or Hub dataset -> metrics JSON + plots) and sharded predict/evaluate
under accelerate / torchrun (`sharded`).

May import: data, runtime, preprocessing, models, inference. Lower stages never import higher ones (tests/test_layers.py).
"""
