"""A small Hugging Face Hub-compatible HTTP server for tests (in-memory, one process, stdlib only).

It implements the part of the Hub API that `huggingface_hub` 2.x, `transformers` and `datasets` use when Xet
is disabled (`HF_HUB_DISABLE_XET=1`): whoami, repo create/delete/info, tree, paths-info, preupload, NDJSON
commits, refs, commits, branches, tags, Space variables, the Git LFS batch API (basic transfer + verify),
`resolve` downloads (HEAD/GET, Range) and YAML validation. Commits are real git-like objects (sha1 ids,
parent links), so branches, tags and revision pinning behave as on the Hub.

Failure injection: unknown tokens get 401 like the Hub; `HubServer.inject(...)` makes matching requests fail
with a chosen status (e.g. 500 on `/commit/` = "server died in the middle of an upload");
`stop()` = server down.

Test infrastructure, not product: no pagination (everything fits one page), no pull requests, no Xet.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
INVALID_CREDENTIALS = "Invalid credentials in Authorization header"
# Same rule of thumb as the Hub's default .gitattributes + binary sniffing: these go through LFS.
LFS_SUFFIXES = (
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".h5",
    ".onnx",
    ".msgpack",
    ".pkl",
    ".npy",
    ".npz",
    ".zip",
    ".gz",
    ".tar",
    ".parquet",
    ".arrow",
    ".png",
    ".jpg",
    ".jpeg",
)
REGULAR_MAX_SIZE = 10 * 1024 * 1024
DEFAULT_GITATTRIBUTES = b"".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n".encode() for s in LFS_SUFFIXES)


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass(frozen=True)
class Blob:
    """One file in a tree: git oid, real size, and the LFS sha256 when stored through LFS."""

    oid: str
    size: int
    lfs_sha256: str | None = None

    def entry(self, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "file", "path": path, "oid": self.oid, "size": self.size}
        if self.lfs_sha256 is not None:
            pointer_size = len(lfs_pointer(self.lfs_sha256, self.size))
            out["lfs"] = {"oid": self.lfs_sha256, "size": self.size, "pointerSize": pointer_size}
        return out


@dataclass
class Commit:
    oid: str
    parent: str | None
    title: str
    message: str
    date: str
    author: str
    tree: dict[str, Blob]


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    sdk: str | None = None
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)  # Space variables (MODEL_ID, ...)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    created_at: str = field(default_factory=_now)


class HubError(Exception):
    """An HTTP error answered the way the Hub does (status, X-Error-Code, JSON `error`)."""

    def __init__(self, status: int, message: str, code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra or {}


@dataclass
class Fault:
    status: int
    method: str | None
    pattern: re.Pattern[str]
    times: int | None  # None = every matching request


class HubState:
    """All repositories, blobs and LFS objects; guarded by one lock (tests are small)."""

    def __init__(self, tokens: dict[str, tuple[str, str]], orgs: dict[str, list[str]] | None = None):
        self.lock = threading.RLock()
        self.tokens = tokens  # token -> (user, role)
        self.orgs = orgs or {}
        self.repos: dict[tuple[str, str], Repo] = {}
        self.blobs: dict[str, bytes] = {}  # git oid -> content (regular files)
        self.lfs: dict[str, bytes] = {}  # sha256 -> content

    # -- repositories ----------------------------------------------------------------------------------------
    def commit(
        self, repo: Repo, branch: str, title: str, message: str, author: str, tree: dict[str, Blob]
    ) -> Commit:
        parent = repo.branches.get(branch)
        date = _now()
        # A content-addressed id over tree + parent + message + time, git style (40 hex).
        listing = "".join(f"{p}\0{b.oid}\n" for p, b in sorted(tree.items()))
        raw = (
            f"tree {hashlib.sha1(listing.encode()).hexdigest()}\nparent {parent}\nauthor {author} {date}\n"
            f"{time.monotonic_ns()}\n\n{title}\n\n{message}"
        )
        oid = hashlib.sha1(raw.encode()).hexdigest()
        c = Commit(oid=oid, parent=parent, title=title, message=message, date=date, author=author, tree=tree)
        repo.commits[oid] = c
        repo.branches[branch] = oid
        return c

    def put_regular(self, data: bytes) -> Blob:
        oid = git_blob_oid(data)
        self.blobs[oid] = data
        return Blob(oid=oid, size=len(data))

    def create_repo(self, repo_type: str, repo_id: str, private: bool, author: str, sdk: str | None) -> Repo:
        repo = Repo(repo_type=repo_type, repo_id=repo_id, private=private, sdk=sdk)
        tree = {".gitattributes": self.put_regular(DEFAULT_GITATTRIBUTES)}
        self.commit(repo, "main", "initial commit", "", author, tree)
        self.repos[(repo_type, repo_id)] = repo
        return repo

    def resolve(self, repo: Repo, rev: str) -> Commit:
        oid = repo.branches.get(rev) or repo.tags.get(rev)
        if oid is None and re.fullmatch(r"[0-9a-f]{40}", rev) and rev in repo.commits:
            oid = rev
        if oid is None:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return repo.commits[oid]

    def read_file(self, blob: Blob) -> bytes:
        return self.lfs[blob.lfs_sha256] if blob.lfs_sha256 else self.blobs[blob.oid]


class HubServer:
    """Start with `HubServer().start()`; `url` is the `HF_ENDPOINT`; `stop()` makes the Hub unreachable."""

    def __init__(
        self,
        token: str = "hf_test_write_token",
        user: str = "tester",
        extra_tokens: dict[str, tuple[str, str]] | None = None,
        orgs: dict[str, list[str]] | None = None,
    ):
        tokens = {token: (user, "write"), **(extra_tokens or {})}
        self.token, self.user = token, user
        self.state = HubState(tokens, orgs)
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status): for asserts and debugging
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self, host: str = "127.0.0.1", port: int = 0) -> HubServer:
        handler = type("BoundHubHandler", (_Handler,), {"hub": self})
        self._httpd = ThreadingHTTPServer((host, port), handler)  # port 0: the OS picks a free one
        self._httpd.daemon_threads = True
        self.url = f"http://{host}:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> HubServer:
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- failure injection -----------------------------------------------------------------------------------
    def inject(
        self, status: int, path_regex: str, method: str | None = None, times: int | None = None
    ) -> Fault:
        """Answer `status` to requests whose path matches `path_regex` (search), `times` times or forever."""
        fault = Fault(status, method.upper() if method else None, re.compile(path_regex), times)
        with self.state.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.state.lock:
            self.faults.clear()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.state.lock:
            for fault in self.faults:
                if (fault.method in (None, method)) and fault.pattern.search(path):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self.faults.remove(fault)
                    return fault
        return None

    # -- helpers for tests -----------------------------------------------------------------------------------
    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        return self.state.repos[(repo_type, repo_id)]

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        with self.state.lock:
            repo = self.repo(repo_id, repo_type)
            commit = self.state.resolve(repo, revision)
            return {p: self.state.read_file(b) for p, b in commit.tree.items()}


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"  # keep-alive, like the real Hub; every answer carries Content-Length

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr noise in tests
        pass

    # -- plumbing --------------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.hub.requests.append((self.command, self.path, status))

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, err: HubError) -> None:
        headers = {"X-Error-Message": err.message}
        if err.code:
            headers["X-Error-Code"] = err.code
        self._json(err.status, {"error": err.message, **err.extra}, headers)

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        self.query = parse_qs(split.query)
        raw = split.path
        body = self._body() if method in ("POST", "PUT", "DELETE") else b""
        fault = self.hub._take_fault(method, raw)
        if fault is not None:
            self._json(fault.status, {"error": f"Injected failure {fault.status}"})
            return
        try:
            with self.hub.state.lock:
                self._route(method, raw, body)
        except HubError as err:
            self._error(err)
        except Exception as exc:  # a bug in this server: answer 500 so the client surfaces it
            self._error(HubError(500, f"test hub server error: {exc!r}"))

    # -- auth ------------------------------------------------------------------------------------------------
    def _user(self) -> tuple[str, str] | None:
        auth = self.headers.get("Authorization", "")
        if not auth:
            return None
        token = auth.split(" ", 1)[1].strip() if " " in auth else auth
        if token not in self.hub.state.tokens:
            raise HubError(401, INVALID_CREDENTIALS)
        return self.hub.state.tokens[token]

    def _can_write_ns(self, ns: str) -> str:
        who = self._user()
        if who is None:
            raise HubError(401, "You must be authenticated to access this resource")
        user, role = who
        if role != "write" or (ns != user and user not in self.hub.state.orgs.get(ns, [])):
            raise HubError(403, f"You don't have the rights to write to the namespace {ns}")
        return user

    def _repo(self, repo_type: str, repo_id: str, write: bool = False) -> Repo:
        who = self._user()  # raises 401 on a bad token before anything else, like the Hub
        repo = self.hub.state.repos.get((repo_type, repo_id))
        ns = repo_id.split("/")[0]
        visible = repo is not None and (
            not repo.private
            or (who is not None and (who[0] == ns or who[0] in self.hub.state.orgs.get(ns, [])))
        )
        if not visible:
            # The Hub answers "not found" for private repos too (never leaks existence).
            raise HubError(401 if who is None else 404, "Repository not found", "RepoNotFound")
        assert repo is not None
        if write:
            self._can_write_ns(ns)
        return repo

    # -- routing ---------------------------------------------------------------------------------------------
    def _route(self, method: str, raw: str, body: bytes) -> None:
        segs = [unquote(s) for s in raw.strip("/").split("/")] if raw.strip("/") else []
        if segs[:2] == ["api", "whoami-v2"] and method == "GET":
            return self._whoami()
        if segs[:2] == ["api", "agent-harnesses"] and method == "GET":  # client telemetry registry: none here
            return self._json(200, {"standardEnvVars": [], "harnesses": {}})
        if segs[:2] == ["api", "validate-yaml"] and method == "POST":
            return self._validate_yaml(body)
        if segs[:2] == ["api", "repos"] and len(segs) == 3:
            if segs[2] == "create" and method == "POST":
                return self._create(json.loads(body or b"{}"))
            if segs[2] == "delete" and method == "DELETE":
                return self._delete(json.loads(body or b"{}"))
        if len(segs) >= 4 and segs[0] == "api" and segs[1] in REPO_TYPES:
            return self._api_repo(method, REPO_TYPES[segs[1]], f"{segs[2]}/{segs[3]}", segs[4:], body)
        if segs and segs[0] == "_lfs":
            return self._lfs_transfer(method, segs[1:], body)
        repo_type = "model"
        if segs and segs[0] in ("datasets", "spaces") and len(segs) >= 3:
            repo_type, segs = REPO_TYPES[segs[0]], segs[1:]
        if len(segs) == 6 and segs[1].endswith(".git") and segs[2:] == ["info", "lfs", "objects", "batch"]:
            return self._lfs_batch(repo_type, f"{segs[0]}/{segs[1][:-4]}", json.loads(body or b"{}"))
        if len(segs) >= 5 and segs[2] == "resolve" and method in ("GET", "HEAD"):
            return self._resolve(repo_type, f"{segs[0]}/{segs[1]}", segs[3], "/".join(segs[4:]))
        raise HubError(404, f"Not found: {method} {raw}")

    def _api_repo(self, method: str, repo_type: str, repo_id: str, rest: list[str], body: bytes) -> None:
        state = self.hub.state
        if not rest and method == "GET":
            return self._info(repo_type, repo_id, "main")
        op, arg = rest[0], (rest[1] if len(rest) > 1 else None)
        if op == "revision" and arg and method == "GET":
            return self._info(repo_type, repo_id, arg)
        if op == "tree" and arg and method == "GET":
            return self._tree(repo_type, repo_id, arg, "/".join(rest[2:]))
        if op == "paths-info" and arg and method == "POST":
            return self._paths_info(repo_type, repo_id, arg, body)
        if op == "preupload" and arg and method == "POST":
            return self._preupload(repo_type, repo_id, arg, json.loads(body))
        if op == "commit" and arg and method == "POST":
            return self._commit(repo_type, repo_id, arg, body)
        if op == "refs" and method == "GET":
            repo = self._repo(repo_type, repo_id)

            def refs(kind: str, items: dict[str, str]) -> list[dict]:
                return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": c} for n, c in items.items()]

            return self._json(
                200,
                {
                    "branches": refs("heads", repo.branches),
                    "tags": refs("tags", repo.tags),
                    "converts": [],
                    "pullRequests": [],
                },
            )
        if op == "commits" and arg and method == "GET":
            repo = self._repo(repo_type, repo_id)
            commit: Commit | None = state.resolve(repo, arg)
            out = []
            while commit is not None:
                out.append(
                    {
                        "id": commit.oid,
                        "title": commit.title,
                        "message": commit.message,
                        "date": commit.date,
                        "authors": [{"user": commit.author}],
                    }
                )
                commit = repo.commits.get(commit.parent) if commit.parent else None
            return self._json(200, out)
        if op == "branch" and arg:
            repo = self._repo(repo_type, repo_id, write=True)
            if method == "POST":
                if arg in repo.branches:
                    raise HubError(409, f"Reference refs/heads/{arg} already exists")
                start = json.loads(body or b"{}").get("startingPoint") or "main"
                repo.branches[arg] = state.resolve(repo, start).oid
                return self._json(200, {})
            if method == "DELETE":
                if arg not in repo.branches or arg == "main":
                    raise HubError(404 if arg != "main" else 403, f"Cannot delete branch {arg}")
                del repo.branches[arg]
                return self._json(200, {})
        if op == "variables" and repo_type == "space":
            repo = self._repo(repo_type, repo_id, write=method != "GET")
            if method == "POST":
                payload = json.loads(body or b"{}")
                repo.variables[payload["key"]] = {
                    "value": payload.get("value", ""),
                    "description": payload.get("description"),
                    "updatedAt": _now(),
                }
            elif method == "DELETE":
                repo.variables.pop(json.loads(body or b"{}").get("key"), None)
            return self._json(200, repo.variables)
        if op == "tag" and arg:
            repo = self._repo(repo_type, repo_id, write=True)
            if method == "POST":
                tag = json.loads(body or b"{}").get("tag")
                if not tag:
                    raise HubError(400, "Missing tag name")
                if tag in repo.tags:
                    raise HubError(409, f"Tag {tag} already exists")
                repo.tags[tag] = state.resolve(repo, arg).oid
                return self._json(200, {})
            if method == "DELETE":
                if repo.tags.pop(arg, None) is None:
                    raise HubError(404, f"Tag {arg} not found", "RevisionNotFound")
                return self._json(200, {})
        raise HubError(404, f"Not found: {method} {self.path}")

    # -- endpoints -------------------------------------------------------------------------------------------
    def _whoami(self) -> None:
        who = self._user()
        if who is None:
            raise HubError(401, "Unauthorized")
        user, role = who
        orgs = [{"name": o, "type": "org"} for o, members in self.hub.state.orgs.items() if user in members]
        self._json(
            200,
            {
                "type": "user",
                "id": hashlib.sha1(user.encode()).hexdigest()[:24],
                "name": user,
                "fullname": user,
                "email": f"{user}@example.com",
                "emailVerified": True,
                "orgs": orgs,
                "isPro": False,
                "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": role}},
            },
        )

    def _validate_yaml(self, body: bytes) -> None:
        content = json.loads(body or b"{}").get("content", "")
        errors = []
        match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, re.DOTALL)
        if match:
            try:
                meta = yaml.safe_load(match.group(1)) or {}
                if not isinstance(meta, dict):
                    errors.append("metadata must be a YAML mapping")
                else:
                    errors += _check_model_index(meta.get("model-index"))
            except yaml.YAMLError as exc:
                errors.append(f"invalid YAML: {exc}")
        warnings = [] if match else [{"message": "empty or missing yaml metadata in repo card"}]
        self._json(400 if errors else 200, {"errors": [{"message": e} for e in errors], "warnings": warnings})

    def _create(self, payload: dict) -> None:
        name, org = payload.get("name"), payload.get("organization")
        repo_type = payload.get("type") or "model"
        who = self._user()
        if who is None:
            raise HubError(401, "You must be authenticated to create a repository")
        ns = org or who[0]
        self._can_write_ns(ns)
        if not name or not re.fullmatch(r"[\w.\-]{1,96}", name):
            raise HubError(400, f"Invalid repo name {name!r}")
        if repo_type == "space" and payload.get("sdk") not in ("gradio", "streamlit", "docker", "static"):
            raise HubError(400, "Spaces need an sdk")
        repo_id = f"{ns}/{name}"
        url = f"{self.hub.url}/{URL_PREFIX[repo_type]}{repo_id}"
        if (repo_type, repo_id) in self.hub.state.repos:
            raise HubError(409, "You already created this repo", extra={"url": url})
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        repo = self.hub.state.create_repo(repo_type, repo_id, private, who[0], payload.get("sdk"))
        for var in payload.get("variables") or []:
            repo.variables[var["key"]] = {"value": var.get("value", ""),
                                          "description": var.get("description")}
        self._json(200, {"url": url, "name": repo_id, "id": repo_id})

    def _delete(self, payload: dict) -> None:
        repo_type = payload.get("type") or "model"
        who = self._user()
        ns = payload.get("organization") or (who[0] if who else "")
        repo_id = f"{ns}/{payload.get('name')}"
        self._repo(repo_type, repo_id, write=True)
        del self.hub.state.repos[(repo_type, repo_id)]
        self._json(200, {})

    def _info(self, repo_type: str, repo_id: str, rev: str) -> None:
        repo = self._repo(repo_type, repo_id)
        commit = self.hub.state.resolve(repo, rev)
        info: dict[str, Any] = {
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
            "id": repo_id,
            "author": repo_id.split("/")[0],
            "sha": commit.oid,
            "lastModified": commit.date,
            "createdAt": repo.created_at,
            "private": repo.private,
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": [{"rfilename": p} for p in sorted(commit.tree)],
        }
        readme = commit.tree.get("README.md")
        if readme is not None:
            card = _front_matter(self.hub.state.read_file(readme).decode("utf-8", "replace"))
            if card:
                info["cardData"] = card
                info["tags"] = list(card.get("tags") or [])
                for key in ("pipeline_tag", "library_name"):
                    if key in card:
                        info[key] = card[key]
        if repo_type == "model" and "config.json" in commit.tree:
            try:
                info["config"] = json.loads(self.hub.state.read_file(commit.tree["config.json"]))
            except ValueError:
                pass
        if repo_type == "space":
            info["sdk"] = repo.sdk
            info["runtime"] = {"stage": "BUILDING", "hardware": {"current": None, "requested": "cpu-basic"}}
        self._json(200, info)

    def _entries(self, commit: Commit, prefix: str, recursive: bool) -> list[dict]:
        prefix = prefix.strip("/")
        base = f"{prefix}/" if prefix else ""
        if prefix and prefix not in _folders(commit.tree) and prefix not in commit.tree:
            raise HubError(404, f"{prefix} does not exist", "EntryNotFound")
        files, folders = [], set()
        for path, blob in sorted(commit.tree.items()):
            if not path.startswith(base):
                continue
            rest = path[len(base) :]
            if "/" in rest and not recursive:
                folders.add(base + rest.split("/")[0])
                continue
            if recursive:
                parts = rest.split("/")[:-1]
                folders.update(base + "/".join(parts[: i + 1]) for i in range(len(parts)))
            files.append(blob.entry(path))
        dirs = [{"type": "directory", "path": d, "oid": _tree_oid(commit.tree, d)} for d in sorted(folders)]
        return dirs + files

    def _tree(self, repo_type: str, repo_id: str, rev: str, path: str) -> None:
        repo = self._repo(repo_type, repo_id)
        commit = self.hub.state.resolve(repo, rev)
        recursive = self.query.get("recursive", ["false"])[0].lower() in ("1", "true")
        self._json(200, self._entries(commit, path, recursive))

    def _paths_info(self, repo_type: str, repo_id: str, rev: str, body: bytes) -> None:
        repo = self._repo(repo_type, repo_id)
        commit = self.hub.state.resolve(repo, rev)
        ctype = self.headers.get("Content-Type", "")
        if "json" in ctype:
            paths = json.loads(body).get("paths", [])
        else:  # form-encoded: paths=a&paths=b&expand=False
            paths = parse_qs(body.decode()).get("paths", [])
        folders = _folders(commit.tree)
        out = []
        for p in paths:
            p = p.strip("/")
            if p in commit.tree:
                out.append(commit.tree[p].entry(p))
            elif p in folders:
                out.append({"type": "directory", "path": p, "oid": _tree_oid(commit.tree, p)})
        self._json(200, out)

    def _preupload(self, repo_type: str, repo_id: str, rev: str, payload: dict) -> None:
        repo = self._repo(repo_type, repo_id, write=True)
        commit = self.hub.state.resolve(repo, rev)
        files = []
        for f in payload.get("files", []):
            sample = base64.b64decode(f.get("sample", ""))
            lfs = (
                f["path"].lower().endswith(LFS_SUFFIXES)
                or f.get("size", 0) > REGULAR_MAX_SIZE
                or b"\0" in sample
            )
            existing = commit.tree.get(f["path"])
            remote_oid = None
            if existing is not None:
                remote_oid = (
                    existing.lfs_sha256 if lfs else (existing.oid if existing.lfs_sha256 is None else None)
                )
            files.append(
                {
                    "path": f["path"],
                    "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": False,
                    "oid": remote_oid,
                }
            )
        self._json(200, {"files": files, "commitOid": commit.oid})

    def _commit(self, repo_type: str, repo_id: str, rev: str, body: bytes) -> None:
        state = self.hub.state
        repo = self._repo(repo_type, repo_id, write=True)
        user = self._user()
        if "create_pr" in self.query:
            raise HubError(400, "Pull requests are not supported by the test hub server")
        if rev not in repo.branches:
            # Commits go to branches only (a tag or a sha is not writable), as on the Hub.
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        head = repo.commits[repo.branches[rev]]
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "First line of the commit payload must be the header")
        header = lines[0]["value"]
        parent = header.get("parentCommit")
        if parent and not head.oid.startswith(parent):
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        tree = dict(head.tree)
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            path = value["path"].strip("/")
            if key == "file":
                data = (
                    base64.b64decode(value["content"])
                    if value.get("encoding") == "base64"
                    else value["content"].encode()
                )
                tree[path] = state.put_regular(data)
            elif key == "lfsFile":
                sha = value["oid"]
                if sha not in state.lfs:
                    raise HubError(422, f"LFS object {sha} for {path} was not uploaded")
                pointer = lfs_pointer(sha, len(state.lfs[sha]))
                tree[path] = Blob(oid=git_blob_oid(pointer), size=len(state.lfs[sha]), lfs_sha256=sha)
            elif key == "deletedFile":
                if tree.pop(path, None) is None:
                    raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
            elif key == "deletedFolder":
                doomed = [p for p in tree if p.startswith(path + "/")]
                if not doomed:
                    raise HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
                for p in doomed:
                    del tree[p]
            else:
                raise HubError(400, f"Unknown commit operation {key!r}")
        commit = state.commit(
            repo,
            rev,
            header.get("summary") or "Update",
            header.get("description") or "",
            user[0] if user else "anonymous",
            tree,
        )
        url = f"{self.hub.url}/{URL_PREFIX[repo_type]}{repo_id}/commit/{commit.oid}"
        self._json(200, {"success": True, "commitOid": commit.oid, "commitUrl": url, "pullRequestUrl": None})

    def _lfs_batch(self, repo_type: str, repo_id: str, payload: dict) -> None:
        self._repo(repo_type, repo_id, write=payload.get("operation") == "upload")
        objects = []
        for obj in payload.get("objects", []):
            oid, size = obj["oid"], obj["size"]
            entry: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if payload.get("operation") == "upload" and oid not in self.hub.state.lfs:
                # Basic transfer: a PUT to an upload URL, then a verify POST (the Hub's S3 flow, in short).
                entry["actions"] = {
                    "upload": {"href": f"{self.hub.url}/_lfs/{oid}", "header": {}},
                    "verify": {"href": f"{self.hub.url}/_lfs/verify", "header": {}},
                }
            objects.append(entry)
        self._json(200, {"transfer": "basic", "objects": objects, "hash_algo": "sha256"})

    def _lfs_transfer(self, method: str, segs: list[str], body: bytes) -> None:
        if method == "PUT" and len(segs) == 1:
            oid = segs[0]
            if hashlib.sha256(body).hexdigest() != oid:
                raise HubError(400, "LFS upload content does not match its sha256")
            self.hub.state.lfs[oid] = body
            return self._send(200, b"", {"ETag": f'"{hashlib.md5(body).hexdigest()}"'})
        if method == "POST" and segs == ["verify"]:
            payload = json.loads(body or b"{}")
            data = self.hub.state.lfs.get(payload.get("oid", ""))
            if data is None or len(data) != payload.get("size"):
                raise HubError(404, "LFS object not found or size mismatch")
            return self._json(200, {"success": True})
        raise HubError(404, f"Not found: {method} {self.path}")

    def _resolve(self, repo_type: str, repo_id: str, rev: str, path: str) -> None:
        state = self.hub.state
        repo = self._repo(repo_type, repo_id)
        commit = state.resolve(repo, rev)
        blob = commit.tree.get(path)
        if blob is None:
            return self._error_with_commit(HubError(404, "Entry not found", "EntryNotFound"), commit.oid)
        data = state.read_file(blob)
        headers = {"X-Repo-Commit": commit.oid, "Accept-Ranges": "bytes", "ETag": f'"{blob.oid}"'}
        if blob.lfs_sha256:
            headers.update({"X-Linked-Etag": f'"{blob.lfs_sha256}"', "X-Linked-Size": str(blob.size)})
        status, rng = 200, self.headers.get("Range")
        if rng:
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            if not m or (not m.group(1) and not m.group(2)):
                raise HubError(416, "Invalid range")
            if m.group(1):
                start = int(m.group(1))
                end = int(m.group(2)) if m.group(2) else len(data) - 1
            else:  # suffix range: the last N bytes
                start, end = max(0, len(data) - int(m.group(2))), len(data) - 1
            if start >= len(data) and len(data) > 0:
                self._send(416, b"", {"Content-Range": f"bytes */{len(data)}", **headers})
                return
            end = min(end, len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start : end + 1], 206
        self._send(status, data, headers, content_type="application/octet-stream")

    def _error_with_commit(self, err: HubError, commit_oid: str) -> None:
        # The Hub sends X-Repo-Commit even on 404 entries so the client can cache "this file does not exist".
        headers = {
            "X-Error-Code": err.code or "",
            "X-Error-Message": err.message,
            "X-Repo-Commit": commit_oid,
        }
        self._json(err.status, {"error": err.message}, headers)


def _folders(tree: dict[str, Blob]) -> set[str]:
    out = set()
    for path in tree:
        parts = path.split("/")[:-1]
        out.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return out


def _tree_oid(tree: dict[str, Blob], folder: str) -> str:
    listing = "".join(f"{p}\0{b.oid}\n" for p, b in sorted(tree.items()) if p.startswith(folder + "/"))
    return hashlib.sha1(listing.encode()).hexdigest()


def _front_matter(text: str) -> dict | None:
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.DOTALL)
    if not match:
        return None
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return None
    return meta if isinstance(meta, dict) else None


def _check_model_index(model_index: Any) -> list[str]:
    """The few model-index rules the Hub enforces that matter here: names, task type, metric type/value."""
    if model_index is None:
        return []
    if not isinstance(model_index, list):
        return ["model-index must be a list"]
    errors = []
    for model in model_index:
        if not isinstance(model, dict) or not model.get("name"):
            errors.append("model-index[].name is required")
            continue
        for result in model.get("results") or []:
            if not (result.get("task") or {}).get("type"):
                errors.append("model-index[].results[].task.type is required")
            if not (result.get("dataset") or {}).get("name") or not (result.get("dataset") or {}).get("type"):
                errors.append("model-index[].results[].dataset.name and .type are required")
            for metric in result.get("metrics") or []:
                if not metric.get("type") or "value" not in metric:
                    errors.append("model-index[].results[].metrics[] needs type and value")
    return errors


if __name__ == "__main__":  # handy for manual poking: `python tests/hub_server.py`
    srv = HubServer().start(port=0)
    print(f"HF_ENDPOINT={srv.url} HF_TOKEN={srv.token}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()
