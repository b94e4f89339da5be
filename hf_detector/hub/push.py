"""Publish on the Hugging Face Hub: push a checkpoint (+ card), push the Gradio Space (pull: data.remote).

Everything goes through `huggingface_hub` (`HfApi.create_repo` / `create_branch` / `create_commit`,
`snapshot_download`), so the endpoint (`HF_ENDPOINT`), the token (`HF_TOKEN` or `hf auth login`), the cache
(`HF_HOME`) and Xet follow the library's usual rules. The token is never printed or logged here.

Failures become one `HubError` line that says what failed and what to do; nothing in the local model
directory is ever modified by a push (the card is rendered in memory and uploaded as README.md).

Stage: hub (imports data, runtime, preprocessing, models, inference, evaluation).
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import importlib.metadata
import importlib.util
import sys
from pathlib import Path
from typing import Any

from huggingface_hub import CommitOperationAdd, HfApi
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..data.remote import (  # noqa: F401  (HubError, resolve_model ... are part of this module's interface)
    DOWNLOAD_PATTERNS,
    SAFE_LOAD_KWARGS,
    HubError,
    _check_repo_id,
    _first_line,
    resolve_model,
    translate_error,
)
from . import card as card_module
from . import remote_code

# What a model repo gets: weights (safetensors only), configs, metrics, card, plots. Pickles, optimizer
# state and intermediate checkpoints never leave the machine.
UPLOAD_PATTERNS = ("*.safetensors", "*.json", "*.md", "*.png", "*.onnx")
NEVER_UPLOAD = ("*.bin", "*.pt", "*.pth", "*.pkl", "*.ckpt", "checkpoint-*", "optimizer*", "scheduler*",
                "rng_state*", "runs", ".*", "__pycache__")
PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
SPACE_README_TEMPLATE = "space_README.md"


# -- push ----------------------------------------------------------------------------------------------------
def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in patterns)


def files_to_upload(model_dir: Path) -> list[Path]:
    """Files of a checkpoint directory that belong on the Hub (relative paths, sorted)."""
    chosen = []
    for path in sorted(model_dir.rglob("*")):
        rel = path.relative_to(model_dir)
        if not path.is_file() or any(_matches(part, NEVER_UPLOAD) for part in rel.parts):
            continue
        if _matches(rel.name, UPLOAD_PATTERNS):
            chosen.append(rel)
    return chosen


def push_model(
    model_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
) -> str:
    """Upload a checkpoint directory (+ rendered model card) to a model repo; return the commit URL."""
    model_dir = Path(model_dir)
    _check_repo_id(repo_id)
    if not (model_dir / "config.json").is_file():
        raise HubError(f"{model_dir} is not a saved checkpoint (no config.json)")
    if not any(model_dir.glob("*.safetensors")):
        raise HubError(f"{model_dir} has no *.safetensors weights; "
                       "save with save_pretrained(safe_serialization=True)")
    # Rendered in memory, uploaded over the checkpoint's own files: the card for this repo id (usage snippets
    # name it) and, for the project's own classes, the configs with an opt-in `auto_map` + hf_detector_shim.py
    # (`remote_code`: pipeline() without `import hf_detector` then fails short, or works with
    # trust_remote_code enabled).
    rendered = remote_code.remote_code_files(model_dir)
    rendered["README.md"] = str(card_module.build_card(model_dir, repo_id=repo_id)).encode("utf-8")
    files = [f for f in files_to_upload(model_dir) if f.as_posix() not in rendered]
    operations = [CommitOperationAdd(path_in_repo=f.as_posix(), path_or_fileobj=str(model_dir / f))
                  for f in files]
    operations += [CommitOperationAdd(path_in_repo=name, path_or_fileobj=data) for name, data in rendered.items()]
    message = commit_message or f"Upload {model_dir.name} with hf-detector"
    api = HfApi(token=token)
    action = f"creating {repo_id}"
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision and revision != "main":
            action = f"creating branch {revision!r} in {repo_id}"
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        action = f"uploading to {repo_id}"
        info = api.create_commit(repo_id, operations, commit_message=message, revision=revision)
    except HubError:
        raise
    except Exception as error:  # noqa: BLE001 - every failure becomes one clear line
        raise translate_error(error, action, repo_id, revision) from error
    return info.commit_url


# -- Trainer -------------------------------------------------------------------------------------------------
class TrainerHubMixin:
    """Mix into `transformers.Trainer` for `--push_to_hub`: `class DetectorTrainer(TrainerHubMixin, Trainer)`.

    Why: the stock `Trainer.push_to_hub` overwrites README.md with its generic card (full of "More information
    needed") and uploads the whole output_dir, `training_args.bin` (a pickle) included. With the mixin the
    same call, driven by the same `TrainingArguments` (`hub_model_id`, `hub_private_repo`, `hub_revision`,
    `hub_token`), renders our card and uploads through `push_model` (safetensors/json/md/png only).
    """

    def create_model_card(self, *args: Any, **kwargs: Any) -> None:
        if self.is_world_process_zero():  # type: ignore[attr-defined]
            card_module.write_card(self.args.output_dir, repo_id=self.hub_model_id)  # type: ignore[attr-defined]

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        # Intermediate pushes would upload training_args.bin from output_dir: only the final push goes out.
        return None

    def push_to_hub(
        self,
        commit_message: str | None = "End of training",
        blocking: bool = True,
        token: str | None = None,
        revision: str | None = None,
        private: bool | None = None,
        **kwargs: Any,
    ) -> str | None:
        args = self.args  # type: ignore[attr-defined]
        self.save_model(_internal_call=True)  # type: ignore[attr-defined]
        if not self.is_world_process_zero():  # type: ignore[attr-defined]
            return None
        self.create_model_card()
        return push_model(
            args.output_dir, self.hub_model_id,  # type: ignore[attr-defined]
            private=bool(private if private is not None else args.hub_private_repo),
            revision=revision or args.hub_revision, commit_message=commit_message,
            token=token or args.hub_token,
        )


# -- Space ---------------------------------------------------------------------------------------------------
SPACE_EXTRAS = ("torch",)  # the Space shows Grad-CAM, which needs PyTorch
PROJECT_NAME = "hf-detector"


def declared_requirements() -> list[str]:
    """What the Space needs, as declared: the core dependencies plus the `torch` extra.

    Read from the pyproject.toml of the checkout being pushed (with tomllib, at push time, so the Space follows
    the file as it is now); the installed distribution's metadata only where there is no such file (Python
    3.10, or an installed wheel), since an editable install's metadata is as old as its last `pip install`."""
    project = _pyproject()
    if project is not None:
        optional = project.get("optional-dependencies", {})
        return [*project.get("dependencies", []), *(r for extra in SPACE_EXTRAS for r in optional.get(extra, []))]
    try:
        declared = importlib.metadata.requires(PROJECT_NAME) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    chosen = []
    for line in declared:
        requirement = Requirement(line)
        if requirement.marker is None or any(requirement.marker.evaluate({"extra": extra})
                                             for extra in ("", *SPACE_EXTRAS)):
            requirement.marker = None if "extra" in str(requirement.marker) else requirement.marker
            chosen.append(str(requirement))
    return chosen


def runtime_requirements() -> list[str]:
    """The Space's requirements.txt: `declared_requirements()` pinned to the versions installed here (what was
    tested), gradio left out (the Space image installs it at `sdk_version`; a second pin could conflict).

    A pin drops the local version label (`2.14.1+cpu` -> `==2.14.1`, which an index can serve); a package not
    installed here, or installed at a version outside the declared range, keeps its declared specifier."""
    pinned = []
    for line in declared_requirements():
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        if name in ("gradio", PROJECT_NAME):
            continue
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        marker = f"; {requirement.marker}" if requirement.marker is not None else ""
        try:
            version = Version(importlib.metadata.version(requirement.name)).public
        except (importlib.metadata.PackageNotFoundError, InvalidVersion):
            version = None
        if version is not None and requirement.specifier.contains(version, prereleases=True):
            pinned.append(f"{requirement.name}{extras}=={version}{marker}")
        else:
            pinned.append(str(requirement))
    return pinned


def _vendored_face_detector() -> list[tuple[str, Path]]:
    """facenet-pytorch (MTCNN code + weights) goes into the Space as files: its metadata pins torch<2.3,
    so `pip install -r requirements.txt` could not resolve it next to our torch (locally it is --no-deps).
    BlazeFace's .tflite goes at the path it has in the mediapipe wheel (a namespace folder next to app.py,
    where `hf_detector.blazeface.model_path` finds it); the rest of mediapipe is not needed."""
    files: list[tuple[str, Path]] = []
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is not None and spec.submodule_search_locations:
        root = Path(next(iter(spec.submodule_search_locations)))
        files += [(f"facenet_pytorch/{p.relative_to(root).as_posix()}", p) for p in sorted(root.rglob("*"))
                  if p.is_file() and p.suffix in (".py", ".pt") and "__pycache__" not in p.parts]
    from ..preprocessing.faces.blazeface import MODEL_FILE, WeightsMissing, model_path

    with contextlib.suppress(WeightsMissing):
        files.append((f"mediapipe/{MODEL_FILE}", model_path()))
    return files


def _pyproject() -> dict[str, Any] | None:
    """The `[project]` table of this checkout's pyproject.toml, or None (no file, no tomllib, another project)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        return None
    try:
        data = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    project = data.get("project")
    return project if isinstance(project, dict) and project.get("name") == PROJECT_NAME else None


def _gradio_version() -> str:
    try:
        return importlib.metadata.version("gradio")
    except importlib.metadata.PackageNotFoundError:
        return "6.0.0"


def space_readme(repo_id: str, model_repo: str, license_id: str = card_module.DEFAULT_LICENSE) -> str:
    """The Space README: YAML front matter (sdk, app_file, model, licence) + a short description."""
    import jinja2

    template = card_module.packaged_template(SPACE_README_TEMPLATE)
    return jinja2.Template(template).render(
        title=repo_id.split("/")[-1], model_repo=model_repo, license_id=license_id,
        sdk_version=_gradio_version(), repo_id=repo_id,
    )


def _package_files() -> list[Path]:
    # The Space runs app.py, which imports hf_detector: ship the package source next to it.
    # Not the bundled checkpoint (hf_detector/checkpoints/): the Space loads its model by MODEL_ID.
    package = PROJECT_ROOT / "hf_detector"
    keep = ("*.py", "*.md", "py.typed")
    return [p.relative_to(PROJECT_ROOT) for p in sorted(package.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts and _matches(p.name, keep)
            and p.relative_to(package).parts[0] != "checkpoints"]


def push_space(
    repo_id: str,
    model_repo: str,
    *,
    private: bool = False,
    token: str | None = None,
    app_path: str | Path | None = None,
) -> str:
    """Create/update a Gradio Space that runs `app.py` with `MODEL_ID=model_repo`; return the commit URL."""
    _check_repo_id(repo_id)
    _check_repo_id(model_repo, "--model-repo")
    app = Path(app_path) if app_path is not None else PROJECT_ROOT / "app.py"
    if not app.is_file():
        raise HubError(f"{app} not found: the Space needs the Gradio app (app.py at the project root)")
    license_id = _model_license(model_repo)
    operations = [
        CommitOperationAdd(path_in_repo="app.py", path_or_fileobj=str(app)),
        CommitOperationAdd(path_in_repo="requirements.txt",
                           path_or_fileobj=("\n".join(runtime_requirements()) + "\n").encode()),
        CommitOperationAdd(path_in_repo="README.md",
                           path_or_fileobj=space_readme(repo_id, model_repo, license_id).encode("utf-8")),
    ]
    operations += [CommitOperationAdd(path_in_repo=p.as_posix(), path_or_fileobj=str(PROJECT_ROOT / p))
                   for p in _package_files()]
    operations += [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(path))
                   for name, path in _vendored_face_detector()]
    examples = PROJECT_ROOT / "examples"  # the app's one-click examples, with their provenance
    if examples.is_dir():
        operations += [CommitOperationAdd(path_in_repo=f"examples/{p.name}", path_or_fileobj=str(p))
                       for p in sorted(examples.iterdir()) if p.suffix.lower() in (".jpg", ".png", ".md")]
    api = HfApi(token=token)
    action = f"creating Space {repo_id}"
    try:
        variables = [{"key": "MODEL_ID", "value": model_repo, "description": "model repo the app loads"}]
        api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True,
                        space_variables=variables)
        action = f"setting MODEL_ID in Space {repo_id}"
        # create_repo ignores variables when the Space already exists: set it explicitly (idempotent).
        api.add_space_variable(repo_id, "MODEL_ID", model_repo, description="model repo the app loads")
        action = f"uploading to Space {repo_id}"
        info = api.create_commit(repo_id, operations, repo_type="space",
                                 commit_message=f"Deploy hf-detector app for {model_repo}")
    except Exception as error:  # noqa: BLE001
        raise translate_error(error, action, repo_id) from error
    return info.commit_url


def _model_license(model_repo: str) -> str:
    """The model's licence from its card when reachable (the Space shows the same terms), else the default."""
    try:
        info = HfApi().model_info(model_repo)
    except Exception:  # noqa: BLE001 - best effort: the Space can be pushed before the model exists
        return card_module.DEFAULT_LICENSE
    data = info.card_data.to_dict() if info.card_data is not None else {}
    return str(data.get("license") or card_module.DEFAULT_LICENSE)


# -- CLI -----------------------------------------------------------------------------------------------------
def register_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add `push` and `push-space` to the `hf-detector` CLI (each sets `func(args) -> exit code`)."""
    push = subparsers.add_parser("push", help="upload a trained checkpoint (+ model card) to a model repo")
    push.add_argument("--model", required=True, help="checkpoint directory (output_dir of train)")
    push.add_argument("--repo-id", required=True, help="NAMESPACE/NAME of the model repo")
    push.add_argument("--private", action="store_true", help="create the repo as private")
    push.add_argument("--revision", default=None, help="branch to push to (created from main if missing)")
    push.add_argument("--commit-message", default=None)
    push.set_defaults(func=_cmd_push)

    space = subparsers.add_parser("push-space", help="deploy app.py as a Gradio Space loading a model repo")
    space.add_argument("--repo-id", required=True, help="NAMESPACE/NAME of the Space")
    space.add_argument("--model-repo", required=True, help="NAMESPACE/NAME of the model the Space loads")
    space.add_argument("--private", action="store_true")
    space.set_defaults(func=_cmd_push_space)


def _run(fn: Any, *args: Any, **kwargs: Any) -> int:
    try:
        url = fn(*args, **kwargs)
    except HubError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(url)
    return 0


def _cmd_push(args: argparse.Namespace) -> int:
    return _run(push_model, args.model, args.repo_id, private=args.private, revision=args.revision,
                commit_message=args.commit_message)


def _cmd_push_space(args: argparse.Namespace) -> int:
    return _run(push_space, args.repo_id, args.model_repo, private=args.private)


def main(argv: list[str] | None = None) -> int:
    """`python -m hf_detector.hub push ...`: the same subcommands without the rest of the CLI."""
    parser = argparse.ArgumentParser(prog="hf-detector")
    register_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
