"""Stage 7, hub: model card rendering (`card`), push of a checkpoint and of the Gradio Space (`push`), the
opt-in `auto_map` of a pushed checkpoint for `pipeline()` without `import hf_detector` (`remote_code`).
Downloads by repo id are lower, in `hf_detector.data.remote` (inference needs them).

May import: data, runtime, preprocessing, models, inference, evaluation. Lower stages never import higher ones (tests/test_layers.py).
"""
