#!/usr/bin/env python
"""Train a real-vs-fake face classifier with the transformers Trainer.

    python train/train.py --model mobilenet_v2 --data ../shared/data/faces --output_dir runs/mnv2
    python train/train.py train/configs/default.json            # a committed recipe
    python train/train.py train/configs/default.json --num_train_epochs 1   # recipe + overrides
    accelerate launch --num_processes 2 train/train.py ...      # data-parallel, same script

Arguments are the dataclasses `ModelArguments`, `DataArguments` (hf_detector/training/arguments.py) and
transformers' `TrainingArguments`; `hf-detector train ...` is the same entry point.
"""

from hf_detector.training.trainer import main

if __name__ == "__main__":
    main()
