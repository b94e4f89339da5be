"""Stage 9, training: the arguments, the Trainer flow (`trainer.main`), calibration baked into the weights,
model soups and the allocator setting for training. It ends a run by calling the stages below it:
metrics, int8, model card, Hub push.

May import: data, runtime, preprocessing, models, inference, evaluation, hub, signals. Lower stages never import higher ones (tests/test_layers.py).
"""
