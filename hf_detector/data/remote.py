"""Checkpoints by Hub repo id: download (safetensors + configs only) and the one error type of every Hub call.

Everything goes through `huggingface_hub` (`snapshot_download`), so the endpoint (`HF_ENDPOINT`), the token
(`HF_TOKEN` or `hf auth login`), the cache (`HF_HOME`) and Xet follow the library's usual rules. Failures
become one `HubError` line that says what failed and what to do; the token is never printed.

Stage: data (imports nothing else of the package).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huggingface_hub import constants as hf_constants
from huggingface_hub import snapshot_download
from huggingface_hub.errors import (
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import validate_repo_id

DOWNLOAD_PATTERNS = ["*.json", "*.safetensors", "*.md", "*.png", "*.txt", "*.onnx"]
# Keyword arguments for every `from_pretrained` on a resolved model: safetensors only, no remote code.
SAFE_LOAD_KWARGS: dict[str, Any] = {"use_safetensors": True, "trust_remote_code": False}


class HubError(RuntimeError):
    """A Hub operation failed; `str(error)` is one line saying what failed and what to do."""


# -- error translation ---------------------------------------------------------------------------------------
def _endpoint() -> str:
    return hf_constants.ENDPOINT


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _is_transport_error(error: BaseException) -> bool:
    # httpx (huggingface_hub 1.x) or httpx2 (2.x): network failures are TransportError subclasses in both.
    names = {cls.__name__ for cls in type(error).__mro__}
    return bool(names & {"TransportError", "ConnectError", "TimeoutException", "NetworkError"}) or isinstance(
        error, (ConnectionError, OfflineModeIsEnabled)
    )


def translate_error(error: BaseException, action: str, repo_id: str, revision: str | None = None) -> HubError:
    """Map a huggingface_hub / network exception to a one-line `HubError` (action: 'uploading to NS/NAME')."""
    chain = _chain(error)
    http = next((e for e in chain if isinstance(e, HfHubHTTPError)), None)
    if http is not None and getattr(http, "response", None) is not None:
        status = http.response.status_code
        if isinstance(http, RevisionNotFoundError):
            return HubError(f"revision {revision or 'main'!r} not found in {repo_id} (404): "
                            "check --revision (a branch, tag or commit sha)")
        if isinstance(http, RepositoryNotFoundError) and status != 403:
            return HubError(f"repository {repo_id} not found ({status}): check the repo id, "
                            "or set HF_TOKEN if the repository is private")
        if status == 401:
            return HubError("authentication failed (401): set HF_TOKEN or run `hf auth login`")
        if status == 403:
            return HubError(f"permission denied (403) while {action}: the token cannot write to {repo_id}; "
                            "use a token with write access or another namespace")
        if isinstance(http, RemoteEntryNotFoundError):
            return HubError(f"file not found in {repo_id} (404) while {action}")
        if status >= 500:
            return HubError(f"server error {status} while {action}: nothing was changed locally; retry later")
        return HubError(f"the Hub refused the request ({status}) while {action}: {_first_line(http)}")
    if any(_is_transport_error(e) for e in chain) or isinstance(error, LocalEntryNotFoundError):
        return HubError(f"cannot reach the Hub at {_endpoint()} while {action} "
                        "(check your connection or HF_ENDPOINT)")
    if isinstance(error, ValueError) and "metadata" in str(error).lower():
        return HubError(f"the Hub rejected the model card metadata while {action}: {_first_line(error)}")
    return HubError(f"{action} failed: {type(error).__name__}: {_first_line(error)}")


def _first_line(error: BaseException) -> str:
    text = " ".join(str(error).split("\n\n")[-1].split())
    return text[:300] or type(error).__name__


def _check_repo_id(repo_id: str, what: str = "--repo-id") -> None:
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise HubError(f"{what} {repo_id!r} is not a Hub repo id (expected NAMESPACE/NAME)") from None
    if repo_id.count("/") != 1:
        raise HubError(f"{what} {repo_id!r} needs a namespace: NAMESPACE/NAME")


def resolve_model(model: str, revision: str | None = None, *, token: str | None = None) -> Path:
    """A local checkpoint directory as is; a Hub repo id downloaded (safetensors + configs) into the cache."""
    local = Path(model).expanduser()
    if local.is_dir():
        return local
    if local.exists():
        raise HubError(f"{model} is a file; pass a checkpoint directory or a Hub repo id")
    _check_repo_id(model, "--model")
    try:
        path = Path(snapshot_download(model, revision=revision, allow_patterns=DOWNLOAD_PATTERNS,
                                      token=token))
    except Exception as error:  # noqa: BLE001
        raise translate_error(error, f"downloading {model}", model, revision) from error
    if not any(path.glob("*.safetensors")):
        raise HubError(f"{model} has no *.safetensors weights at revision {revision or 'main'}; "
                       "this project loads safetensors only (no pickled weights)")
    return path
