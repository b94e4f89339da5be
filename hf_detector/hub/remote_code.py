"""`pipeline()` on a pushed checkpoint for a user who has only transformers: the opt-in `auto_map` path.

transformers finds a checkpoint's custom classes in one of two documented ways: a library the user imports
registers them with the Auto classes (`import hf_detector` does; the default, no remote code), or the
checkpoint's configs carry an `auto_map` naming a module of the repository, which transformers runs only
with `trust_remote_code enabled`. A pushed repository gets both. Its `preprocessor_config.json` (and
`config.json` for the project's own architectures) carry an `auto_map` to `hf_detector_shim.py`, a module without model code:
it imports the installed package and subclasses its classes, so there is still one implementation.

What a user sees (`tests/test_pipeline_hub.py` runs each case):

- `import hf_detector` first: the registered classes win (transformers prefers local code), no prompt.
- no import, `trust_remote_code` left off: transformers' own short error, "The repository ... contains
  custom code ... pass the argument `trust_remote_code enabled`" (instead of the 2,000-character list of model
  types a checkpoint without `auto_map` gets).
- `trust_remote_code enabled` with hf-detector installed: works without the import (the shim imports it).
- `trust_remote_code enabled` without hf-detector: one line, `ImportError: this model needs the hf-detector
  package: pip install 'hf-detector[torch]', then import hf_detector before pipeline() (...)`.

Pure: reads the checkpoint's JSON files and returns the files to upload as bytes; the local checkpoint is
never modified (push renders them in memory, like the card).

Stage: hub (imports data).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..data.extras import install_hint

SHIM_FILE = "hf_detector_shim.py"
PROCESSOR_CLASS = "FaceImageProcessor"
# models.custom_cnn.CustomCNNConfig.model_type (not imported: that module imports torch)
CUSTOM_CNN_MODEL_TYPE = "hf_detector_custom_cnn"
# The project's own architectures by config.model_type: (config class, model class, module defining both)
CUSTOM_MODELS = {
    CUSTOM_CNN_MODEL_TYPE: ("CustomCNNConfig", "CustomCNNForImageClassification", "hf_detector.models.custom_cnn"),
    "hf_detector_efficientnet_lite": ("EfficientNetLiteConfig", "EfficientNetLiteForImageClassification",
                                      "hf_detector.models.efficientnet_lite"),
    "hf_detector_local_mobilenet_v2": ("LocalMobileNetV2Config", "LocalMobileNetV2ForImageClassification",
                                       "hf_detector.models.local_mobilenet_v2"),
}
# (Auto class, class name in the shim, module of the installed package that defines it)
_PROCESSOR = ("AutoImageProcessor", PROCESSOR_CLASS, "hf_detector.preprocessing.processor")
MISSING_PACKAGE = (f"this model needs the hf-detector package: {install_hint('torch')}, "
                   "then import hf_detector before pipeline()")


def read_json(path: Path) -> dict[str, Any]:
    """A checkpoint's JSON file as a dict; {} when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def needs_registration(config: dict[str, Any], processor: dict[str, Any]) -> bool:
    """True when transformers alone cannot load the checkpoint (its processor or model is the project's)."""
    return (processor.get("image_processor_type") == PROCESSOR_CLASS
            or is_custom_model(config))


def is_custom_model(config: dict[str, Any]) -> bool:
    """True when the model's classes are the project's (not one of transformers' own architectures)."""
    return config.get("model_type") in CUSTOM_MODELS


def _model_classes(config: dict[str, Any]) -> list[tuple[str, str, str]]:
    config_class, model_class, module = CUSTOM_MODELS[config["model_type"]]
    return [("AutoConfig", config_class, module), ("AutoModelForImageClassification", model_class, module)]


def _json_bytes(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")  # transformers' own layout


def _with_auto_map(data: dict[str, Any], entries: dict[str, str]) -> dict[str, Any]:
    auto_map = data.get("auto_map") if isinstance(data.get("auto_map"), dict) else {}
    return {**data, "auto_map": {**auto_map, **entries}}


def shim_source(classes: list[tuple[str, str, str]]) -> str:
    """The module `auto_map` points at: imports of the installed classes, one subclass each, no model code.

    The imports sit in a `try` block, which transformers' dependency check skips, so a missing package gives
    the shim's own one-line message rather than "requires the following packages ... pip install hf_detector".
    Subclasses, not the classes themselves: transformers marks what it loads from remote code
    (`register_for_auto_class`), and that must not leak onto the installed classes."""
    module = SHIM_FILE.removesuffix(".py")
    imports = "\n".join(f"    from {source} import {name} as _{name}" for _, name, source in classes)
    bodies = []
    config_name = next((name for auto, name, _ in classes if auto == "AutoConfig"), None)
    for auto, name, _ in classes:
        body = f'    """`{name}` of the installed hf-detector package."""'
        if auto == "AutoModelForImageClassification" and config_name:
            body += f"\n\n    config_class = {config_name}"
        bodies.append(f"class {name}(_{name}):\n{body}\n")
    return (
        f'"""{module}: the classes of this checkpoint come from the hf-detector package; no model code here.\n'
        "\n"
        f"    {install_hint('torch')}\n"
        "    import hf_detector  # registers them with transformers' Auto classes: no trust_remote_code needed\n"
        "\n"
        "With trust_remote_code enabled transformers runs this file instead, which imports the installed package.\n"
        '"""\n'
        "\n"
        "try:\n"
        f"{imports}\n"
        "except ImportError as error:\n"
        f'    raise ImportError(f"{MISSING_PACKAGE} ({{error}})") from None\n'
        "\n\n" + "\n\n".join(bodies)
    )


def remote_code_files(model_dir: str | Path) -> dict[str, bytes]:
    """{path in repo: content} to upload over the checkpoint's own files: the configs with `auto_map` and
    the shim; empty for a checkpoint that transformers loads by itself."""
    model_dir = Path(model_dir)
    config = read_json(model_dir / "config.json")
    processor = read_json(model_dir / "preprocessor_config.json")
    module = SHIM_FILE.removesuffix(".py")
    files: dict[str, bytes] = {}
    classes: list[tuple[str, str, str]] = []
    if is_custom_model(config):
        model_classes = _model_classes(config)
        classes += model_classes
        files["config.json"] = _json_bytes(_with_auto_map(config, {auto: f"{module}.{name}"
                                                                   for auto, name, _ in model_classes}))
    if processor.get("image_processor_type") == PROCESSOR_CLASS:
        classes.append(_PROCESSOR)
        auto, name, _ = _PROCESSOR
        # By backend (transformers 5's form for image processors), not a plain "module.Class" string: for a
        # string, the video-processor lookup that pipeline() also runs derives "module.FaceVideoProcessor"
        # from it and asks "Do you wish to run the custom code? [y/N]" even after `import hf_detector`.
        reference = f"{module}.{name}"
        files["preprocessor_config.json"] = _json_bytes(
            _with_auto_map(processor, {auto: {"pil": reference, "torchvision": reference}}))
    if classes:
        files[SHIM_FILE] = shim_source(classes).encode("utf-8")
    return files
