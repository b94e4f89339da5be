"""Metadata signals: EXIF, PNG text chunks, XMP `DigitalSourceType` and C2PA content credentials.

These are *weak hints*, shown next to the model verdict and never mixed into it: metadata is removed by
most sites and messaging apps, rewritten by every editor, and trivially forged. A camera make in EXIF
does not make a photo real, and a generated face with its metadata stripped looks like any other file.
The absence of metadata proves nothing.

Parsing is bounded so that a hostile file cannot stall or crash the app: the file is read up to
`MAX_FILE_BYTES`, each text value is cut at `MAX_VALUE_CHARS`, compressed chunks are inflated at most to
`MAX_VALUE_BYTES`, all text together is capped at `MAX_TOTAL_TEXT_BYTES`, signals are capped at
`MAX_SIGNALS`, and the C2PA reader (native code) runs in a worker thread with a timeout and only on
files that contain a C2PA marker and are at most `C2PA_MAX_FILE_BYTES`. Remote manifests and OCSP are
never fetched. `read_metadata` never raises: any failure becomes an ``error`` signal.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
import threading
import warnings
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from ..data import images as _images  # noqa: F401 (registers the HEIC / HEIF opener with Pillow)

__all__ = [
    "DISCLAIMER",
    "MetadataReport",
    "Signal",
    "read_metadata",
]

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_VALUE_BYTES = 64 * 1024  # raw bytes kept (or inflated) per text value
MAX_VALUE_CHARS = 2_000  # characters of a value shown in a signal
MAX_TOTAL_TEXT_BYTES = 512 * 1024
MAX_SIGNALS = 40
MAX_PNG_CHUNKS = 10_000
C2PA_MAX_FILE_BYTES = 32 * 1024 * 1024
C2PA_TIMEOUT_S = 5.0

# What a signal suggests. Only these values are used.
CAMERA = "camera"  # names a camera, lens or capture time
GENERATOR = "generator"  # text an image generator writes (prompt, sampler settings, workflow)
AI_DECLARED = "ai-declared"  # the file itself declares AI generation (IPTC / C2PA digital source type)
EDITED = "edited"  # editing software or an edit/composite declaration
CREDENTIALS = "content-credentials"  # a C2PA manifest is present (who signed, validation state)
INFO = "info"  # neutral information
ERROR = "error"  # the metadata could not be read (the image may still be fine)

DISCLAIMER = (
    "Metadata is a weak hint, shown apart from the model verdict and never used by it: it is easily "
    "stripped (most sites and messaging apps remove it) or forged, and its absence proves nothing."
)

# Lower-case substrings of software / tool names.
_GENERATOR_NAMES = (
    "stable diffusion",
    "stablediffusion",
    "automatic1111",
    "sd-webui",
    "comfyui",
    "invokeai",
    "novelai",
    "midjourney",
    "dall-e",
    "dall·e",
    "dalle",
    "firefly",
    "imagen",
    "fooocus",
    "diffusers",
    "stylegan",
    "leonardo.ai",
    "dreamstudio",
    "flux.1",
    "gpt-4o",
    "chatgpt",
    "ideogram",
    "nightcafe",
    "playground ai",
    "this person does not exist",
    "thispersondoesnotexist",
    "generated.photos",
    "artbreeder",
    "craiyon",
    "gemini",
    "grok",
    "kling",
    "stability ai",
    "sdxl",
)
_EDITOR_NAMES = (
    "photoshop",
    "lightroom",
    "gimp",
    "affinity",
    "pixelmator",
    "snapseed",
    "facetune",
    "picsart",
    "canva",
    "paint.net",
    "krita",
    "capture one",
    "darktable",
    "rawtherapee",
    "luminar",
    "photopea",
    "faceapp",
    "remini",
    "meitu",
    "airbrush",
    "lensa",
)
# PNG text keys written by generators (A1111/Forge: parameters; ComfyUI: prompt, workflow; InvokeAI:
# invokeai_metadata, sd-metadata, Dream; NovelAI: Description/Comment/Source; Fooocus: fooocus_scheme).
_GENERATOR_PNG_KEYS = {
    "parameters",
    "prompt",
    "workflow",
    "invokeai_metadata",
    "invokeai_graph",
    "sd-metadata",
    "dream",
    "negative_prompt",
    "fooocus_scheme",
    "generation_data",
    "aigc",
}
_GENERATOR_TEXT_PATTERNS = re.compile(
    r"(negative prompt:|steps:\s*\d|sampler:|cfg scale:|\"sampler\"|\"steps\"\s*:|\"seed\"\s*:|"
    r"\"prompt\"\s*:|\"uc\"\s*:|model hash:|denoising strength)",
    re.IGNORECASE,
)

# IPTC digital source type vocabulary (http://cv.iptc.org/newscodes/digitalsourcetype/).
_DIGITAL_SOURCE_TYPES = {
    "trainedalgorithmicmedia": (AI_DECLARED, "created by a generative AI model (trained algorithmic media)"),
    "compositewithtrainedalgorithmicmedia": (AI_DECLARED, "a composite that includes generative AI content"),
    "algorithmicmedia": (AI_DECLARED, "created purely by an algorithm (synthetic)"),
    "compositesynthetic": (AI_DECLARED, "a composite that includes synthetic content"),
    "algorithmicallyenhanced": (EDITED, "a capture enhanced by an algorithm"),
    "minorhumanedits": (EDITED, "a capture with minor human edits"),
    "composite": (EDITED, "a composite of several elements"),
    "compositecapture": (EDITED, "a composite of several captures"),
    "digitalart": (EDITED, "digital art made by a person with software"),
    "virtualrecording": (INFO, "a recording of a virtual event"),
    "screencapture": (INFO, "a screen capture"),
    "datadrivenmedia": (INFO, "rendered from data"),
    "digitalcapture": (CAMERA, "captured by a digital camera or phone"),
    "computationalcapture": (CAMERA, "a computational capture (e.g. phone HDR / multi-frame)"),
    "negativefilm": (CAMERA, "a scan of a film negative"),
    "positivefilm": (CAMERA, "a scan of a film positive"),
    "print": (CAMERA, "a scan of a print"),
}

_EXIF_IFD = 0x8769
_EXIF_TAGS = {  # tag -> (name, ifd) with ifd None for IFD0
    0x010F: ("Make", None),
    0x0110: ("Model", None),
    0x0131: ("Software", None),
    0x0132: ("DateTime", None),
    0x010E: ("ImageDescription", None),
    0x013B: ("Artist", None),
    0x9003: ("DateTimeOriginal", _EXIF_IFD),
    0xA434: ("LensModel", _EXIF_IFD),
    0x9286: ("UserComment", _EXIF_IFD),
}

_XMP_START = re.compile(rb"<x:xmpmeta|<\?xpacket begin")
_XMP_END = re.compile(rb"</x:xmpmeta>|<\?xpacket end[^>]*\?>")


@dataclass(frozen=True)
class Signal:
    """One metadata finding. ``suggests`` is one of: camera, generator, ai-declared, edited,
    content-credentials, info, error."""

    kind: str  # "exif", "png-text", "xmp", "c2pa", "file"
    key: str
    value: str
    suggests: str
    note: str = ""


@dataclass
class MetadataReport:
    """All signals found in one file, a one-sentence summary and the standing disclaimer."""

    signals: list[Signal] = field(default_factory=list)
    summary: str = ""
    disclaimer: str = DISCLAIMER
    format: str | None = None
    truncated: bool = False

    def suggests(self, what: str) -> list[Signal]:
        return [signal for signal in self.signals if signal.suggests == what]

    @property
    def errors(self) -> list[str]:
        return [f"{signal.key}: {signal.value}" for signal in self.suggests(ERROR)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "disclaimer": self.disclaimer,
            "format": self.format,
            "truncated": self.truncated,
            "signals": [asdict(signal) for signal in self.signals],
        }

    def to_rows(self, max_chars: int = 300) -> list[list[str]]:
        """Rows (source, key, value, suggests) for a table; long values are shortened."""
        return [
            [signal.kind, signal.key, _shorten(signal.value, max_chars), signal.suggests]
            for signal in self.signals
        ]

    def to_markdown(self, max_chars: int = 300) -> str:
        lines = [f"**{self.summary}**", "", f"_{self.disclaimer}_"]
        if self.signals:
            lines += ["", "| source | key | value | suggests |", "|---|---|---|---|"]
            for kind, key, value, suggests in self.to_rows(max_chars):
                lines.append(f"| {kind} | {_md(key)} | {_md(value)} | {suggests} |")
        return "\n".join(lines)


def read_metadata(source: str | os.PathLike | bytes | bytearray) -> MetadataReport:
    """Collect metadata signals from an image file (path or bytes). Never raises."""
    report = MetadataReport()
    budget = _Budget()
    try:
        data = _read_bytes(source, report)
        if data is not None:
            _collect(data, report, budget)
    except Exception as error:  # metadata must never break a prediction
        report.signals.append(
            Signal("file", "metadata", f"could not read metadata ({_reason(error)})", ERROR)
        )
    if len(report.signals) > MAX_SIGNALS:
        report.signals = report.signals[:MAX_SIGNALS]
        report.truncated = True
    report.truncated = report.truncated or budget.exhausted
    report.summary = _summarise(report)
    return report


# --------------------------------------------------------------------------------------------- reading


class _Budget:
    """Total text bytes kept across all values of one file."""

    def __init__(self, total: int = MAX_TOTAL_TEXT_BYTES) -> None:
        self.left = total
        self.exhausted = False

    def take(self, raw: bytes) -> bytes:
        keep = min(len(raw), MAX_VALUE_BYTES)
        if keep > self.left:
            keep = max(self.left, 0)
            self.exhausted = True
        self.left -= keep
        return raw[:keep]


def _read_bytes(source: str | os.PathLike | bytes | bytearray, report: MetadataReport) -> bytes | None:
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        path = Path(source)
        if not path.is_file():
            report.signals.append(Signal("file", "file", "no such file", ERROR))
            return None
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            report.signals.append(
                Signal(
                    "file",
                    "file",
                    f"file is {size >> 20} MB; metadata not inspected above {MAX_FILE_BYTES >> 20} MB",
                    ERROR,
                )
            )
            return None
        data = path.read_bytes()
    if len(data) > MAX_FILE_BYTES:
        report.signals.append(Signal("file", "file", f"file larger than {MAX_FILE_BYTES >> 20} MB", ERROR))
        return None
    if not data:
        report.signals.append(Signal("file", "file", "empty file", ERROR))
        return None
    return data


def _collect(data: bytes, report: MetadataReport, budget: _Budget) -> None:
    image = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data))  # lazy: reads headers only, never decodes pixels
        report.format = image.format
    except Exception as error:
        report.signals.append(Signal("file", "format", f"not a readable image ({_reason(error)})", ERROR))

    xmp_packets: list[bytes] = []
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        report.format = report.format or "PNG"
        xmp_packets += _png_signals(data, report, budget)
    if image is not None:
        _exif_signals(image, report, budget)
        xmp = image.info.get("xmp") if image.format != "PNG" else None
        if isinstance(xmp, (bytes, str)):
            xmp_packets.append(xmp.encode("utf-8", "replace") if isinstance(xmp, str) else xmp)
        image.close()
    if not xmp_packets:
        xmp_packets += _scan_xmp(data)
    for packet in xmp_packets[:4]:
        _xmp_signals(budget.take(packet), report)
    _c2pa_signals(data, report.format, report)


# ------------------------------------------------------------------------------------------------- PNG


def _png_signals(data: bytes, report: MetadataReport, budget: _Budget) -> list[bytes]:
    """Walk PNG chunks (all of them, also after IDAT) and turn text chunks into signals."""
    xmp: list[bytes] = []
    offset, count = 8, 0
    while offset + 8 <= len(data) and count < MAX_PNG_CHUNKS:
        length, ctype = struct.unpack(">I4s", data[offset : offset + 8])
        body_start = offset + 8
        body_end = body_start + length
        if body_end > len(data):
            report.signals.append(Signal("png-text", "PNG", "file is truncated inside a chunk", ERROR))
            body_end = len(data)
        count += 1
        if ctype in (b"tEXt", b"zTXt", b"iTXt"):
            try:
                key, raw = _png_text_chunk(ctype, data, body_start, body_end)
            except (ValueError, zlib.error) as error:
                report.signals.append(
                    Signal("png-text", ctype.decode(), f"unreadable chunk ({error})", ERROR)
                )
            else:
                if key == "XML:com.adobe.xmp":
                    xmp.append(raw)
                else:
                    _png_text_signal(key, budget.take(raw), len(raw) > MAX_VALUE_BYTES, report)
        elif ctype == b"eXIf":
            pass  # PIL exposes it through getexif()
        if ctype == b"IEND":
            break
        offset = body_end + 4  # CRC
    return xmp


def _png_text_chunk(ctype: bytes, data: bytes, start: int, end: int) -> tuple[str, bytes]:
    """Return (key, raw value bytes, at most MAX_VALUE_BYTES+1) without reading more than needed."""
    head = data[start : min(end, start + 80)]
    sep = head.find(b"\0")
    if sep < 1:
        raise ValueError("no keyword")
    key = head[:sep].decode("latin-1")
    pos = start + sep + 1
    limit = MAX_VALUE_BYTES + 1
    if ctype == b"tEXt":
        return key, data[pos : min(end, pos + limit)]
    if ctype == b"zTXt":
        return key, _inflate(data[pos + 1 : end], limit)  # skip compression method byte
    # iTXt: compression flag, method, language\0, translated keyword\0, text
    flag = data[pos] if pos < end else 0
    pos += 2
    for _ in range(2):
        nul = data.find(b"\0", pos, end)
        if nul < 0:
            raise ValueError("malformed iTXt")
        pos = nul + 1
    if flag:
        return key, _inflate(data[pos:end], limit)
    return key, data[pos : min(end, pos + limit)]


def _inflate(compressed: bytes, limit: int) -> bytes:
    return zlib.decompressobj().decompress(compressed, limit)


def _png_text_signal(key: str, raw: bytes, cut: bool, report: MetadataReport) -> None:
    value = _text(raw)
    note = f"only the first {len(raw) // 1024} KB were read" if cut else ""
    low_key = key.lower()
    if low_key in _GENERATOR_PNG_KEYS:
        suggests = GENERATOR
        note = _join(f"'{key}' is the text chunk generators such as {_who_writes(low_key)} write", note)
    elif low_key in {"software", "creator tool", "source"}:
        suggests = _classify_software(value)
    elif _GENERATOR_TEXT_PATTERNS.search(value[:MAX_VALUE_BYTES]):
        suggests = GENERATOR
        note = _join("looks like generation settings (prompt / sampler / seed)", note)
    else:
        suggests = _classify_software(value) if low_key in {"comment", "description", "title"} else INFO
    report.signals.append(Signal("png-text", key, _shorten(value, MAX_VALUE_CHARS), suggests, note))


def _who_writes(key: str) -> str:
    return {
        "parameters": "AUTOMATIC1111 / Forge",
        "prompt": "ComfyUI",
        "workflow": "ComfyUI",
        "invokeai_metadata": "InvokeAI",
        "sd-metadata": "InvokeAI",
        "dream": "InvokeAI",
        "fooocus_scheme": "Fooocus",
    }.get(key, "Stable Diffusion front-ends")


# ------------------------------------------------------------------------------------------------ EXIF


def _exif_signals(image: Image.Image, report: MetadataReport, budget: _Budget) -> None:
    try:
        exif = image.getexif()
        ifds = {None: exif, _EXIF_IFD: exif.get_ifd(_EXIF_IFD) if _EXIF_IFD in exif else {}}
    except Exception as error:
        report.signals.append(Signal("exif", "EXIF", f"unreadable EXIF ({_reason(error)})", ERROR))
        return
    values: dict[str, str] = {}
    for tag, (name, ifd) in _EXIF_TAGS.items():
        raw = ifds[ifd].get(tag)
        if raw is None:
            continue
        text = _user_comment(raw, budget) if name == "UserComment" else _exif_text(raw, budget)
        if text:
            values[name] = text
    make, model = values.get("Make", ""), values.get("Model", "")
    if make or model:
        camera = " ".join(part for part in (make, model) if part)
        report.signals.append(
            Signal("exif", "Make/Model", _shorten(camera, 200), CAMERA, "camera named in EXIF")
        )
    if "LensModel" in values:
        report.signals.append(Signal("exif", "LensModel", _shorten(values["LensModel"], 200), CAMERA))
    if "Software" in values:
        software = values["Software"]
        report.signals.append(
            Signal("exif", "Software", _shorten(software, 300), _classify_software(software))
        )
    if "DateTimeOriginal" in values:
        report.signals.append(
            Signal(
                "exif", "DateTimeOriginal", _shorten(values["DateTimeOriginal"], 64), CAMERA, "capture time"
            )
        )
    elif "DateTime" in values:
        report.signals.append(
            Signal("exif", "DateTime", _shorten(values["DateTime"], 64), INFO, "file change time")
        )
    for name in ("ImageDescription", "UserComment", "Artist"):
        if name not in values:
            continue
        text = values[name]
        if _GENERATOR_TEXT_PATTERNS.search(text):
            suggests, note = GENERATOR, "looks like generation settings (prompt / sampler / seed)"
        else:
            suggests, note = _classify_software(text), ""
        report.signals.append(Signal("exif", name, _shorten(text, MAX_VALUE_CHARS), suggests, note))


def _exif_text(raw: Any, budget: _Budget) -> str:
    if isinstance(raw, bytes):
        return _text(budget.take(raw)).strip("\0 ")
    if isinstance(raw, str):
        return _text(budget.take(raw.encode("utf-8", "replace"))).strip("\0 ")
    return _shorten(str(raw), 200)


def _user_comment(raw: Any, budget: _Budget) -> str:
    """EXIF UserComment: 8-byte charset header then text (A1111 writes UTF-16 "UNICODE" here)."""
    if isinstance(raw, str):
        return _exif_text(raw, budget)
    if not isinstance(raw, bytes) or len(raw) < 8:
        return ""
    header, body = raw[:8], budget.take(raw[8:])
    if header.startswith(b"UNICODE"):
        body = body[: len(body) // 2 * 2]
        big_endian = body[:1] == b"\0"  # ASCII text in UTF-16-BE starts with a zero byte
        text = body.decode("utf-16-be" if big_endian else "utf-16-le", "replace")
    else:
        text = _text(body)
    return text.strip("\0 ")


# ------------------------------------------------------------------------------------------------- XMP


def _scan_xmp(data: bytes) -> list[bytes]:
    """Find an uncompressed XMP packet anywhere in the file (JPEG APP1, TIFF, WebP, sidecar-in-file)."""
    start = _XMP_START.search(data)
    if not start:
        return []
    end = _XMP_END.search(data, start.end(), start.start() + 4 * MAX_VALUE_BYTES)
    stop = end.end() if end else start.start() + MAX_VALUE_BYTES
    return [data[start.start() : stop]]


_DST_RE = re.compile(
    rb"DigitalSourceType\s*(?:=\s*[\"']([^\"']{1,300})[\"']|>\s*(?:<rdf:li[^>]*>\s*)?([^<]{1,300})<)",
    re.IGNORECASE,
)
_DST_RESOURCE_RE = re.compile(
    rb"DigitalSourceType[^>]{0,40}rdf:resource\s*=\s*[\"']([^\"']{1,300})[\"']", re.I
)
_XMP_FIELDS = {
    "xmp:CreatorTool": re.compile(rb"xmp:CreatorTool\s*(?:=\s*[\"']([^\"']{1,300})[\"']|>([^<]{1,300})<)"),
    "tiff:Make": re.compile(rb"tiff:Make\s*(?:=\s*[\"']([^\"']{1,200})[\"']|>([^<]{1,200})<)"),
    "tiff:Model": re.compile(rb"tiff:Model\s*(?:=\s*[\"']([^\"']{1,200})[\"']|>([^<]{1,200})<)"),
}


def _xmp_signals(packet: bytes, report: MetadataReport) -> None:
    """Regex, not an XML parser: no entity expansion, no network, bounded input."""
    seen: set[str] = set()
    for match in list(_DST_RE.finditer(packet)) + list(_DST_RESOURCE_RE.finditer(packet)):
        value = (
            next(group for group in match.groups() if group is not None).decode("utf-8", "replace").strip()
        )
        if not value or value in seen:
            continue
        seen.add(value)
        term = value.rstrip("/").rsplit("/", 1)[-1]
        suggests, meaning = _DIGITAL_SOURCE_TYPES.get(
            term.lower(), (INFO, "unrecognised digital source type")
        )
        report.signals.append(Signal("xmp", "Iptc4xmpExt:DigitalSourceType", value, suggests, meaning))
    for key, pattern in _XMP_FIELDS.items():
        match = pattern.search(packet)
        if not match:
            continue
        value = (
            next(group for group in match.groups() if group is not None).decode("utf-8", "replace").strip()
        )
        if not value:
            continue
        suggests = _classify_software(value) if key == "xmp:CreatorTool" else CAMERA
        report.signals.append(Signal("xmp", key, _shorten(value, 300), suggests))


# ------------------------------------------------------------------------------------------------ C2PA

_C2PA_MIME = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
    "GIF": "image/gif",
    "HEIF": "image/heif",
    "AVIF": "image/avif",
}
# Native reads run in daemon threads (a stuck one cannot block interpreter exit), at most this many at
# once: when they are all busy (e.g. stuck on hostile files), further files skip the check.
_C2PA_SLOTS = threading.BoundedSemaphore(2)


def _c2pa_signals(data: bytes, image_format: str | None, report: MetadataReport) -> None:
    if b"c2pa" not in data:  # every embedded manifest store is a JUMBF box labelled "c2pa"
        return
    if len(data) > C2PA_MAX_FILE_BYTES:
        report.signals.append(
            Signal(
                "c2pa",
                "C2PA",
                f"possible content credentials not checked (file above {C2PA_MAX_FILE_BYTES >> 20} MB)",
                INFO,
            )
        )
        return
    try:
        import c2pa  # noqa: F401
    except ImportError:
        report.signals.append(
            Signal(
                "c2pa", "C2PA", "possible content credentials not checked (c2pa-python not installed)", INFO
            )
        )
        return
    mime = _C2PA_MIME.get(image_format or "", None)
    if not _C2PA_SLOTS.acquire(blocking=False):
        report.signals.append(Signal("c2pa", "C2PA", "content credentials not checked (checker busy)", INFO))
        return
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["store"] = _read_c2pa(data, mime)
        except BaseException as error:  # reported to the caller below
            outcome["error"] = error
        finally:
            _C2PA_SLOTS.release()

    worker = threading.Thread(target=work, name="c2pa-read", daemon=True)
    worker.start()
    worker.join(C2PA_TIMEOUT_S)
    if worker.is_alive():
        report.signals.append(
            Signal("c2pa", "C2PA", f"content credentials check timed out ({C2PA_TIMEOUT_S:g} s)", ERROR)
        )
        return
    if "error" in outcome:
        report.signals.append(
            Signal("c2pa", "C2PA", f"content credentials unreadable ({_reason(outcome['error'])})", ERROR)
        )
        return
    manifest_store = outcome.get("store")
    if manifest_store is not None:
        report.signals.extend(_c2pa_manifest_signals(manifest_store))


def _read_c2pa(data: bytes, mime: str | None) -> dict[str, Any] | None:
    import c2pa

    settings = c2pa.Settings.from_dict({"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}})
    context = c2pa.Context(settings)
    reader = c2pa.Reader.try_create(mime, io.BytesIO(data), None, context)
    if reader is None:
        return None
    try:
        store = json.loads(reader.json())
        store["_validation_state"] = reader.get_validation_state()
        return store
    finally:
        closer = getattr(reader, "close", None)
        if callable(closer):
            closer()


def _c2pa_manifest_signals(store: dict[str, Any]) -> list[Signal]:
    manifests = store.get("manifests") or {}
    active = manifests.get(store.get("active_manifest") or "") or next(iter(manifests.values()), None)
    if not isinstance(active, dict):
        return [Signal("c2pa", "C2PA", "manifest store present but no active manifest", CREDENTIALS)]
    signals: list[Signal] = []
    generator = active.get("claim_generator")
    infos = active.get("claim_generator_info") or []
    if not generator and infos and isinstance(infos[0], dict):
        generator = " ".join(str(infos[0].get(k, "")) for k in ("name", "version")).strip()
    issuer = (active.get("signature_info") or {}).get("issuer") or "unknown issuer"
    state = store.get("_validation_state") or "unknown"
    codes = [item.get("code", "") for item in store.get("validation_status") or [] if isinstance(item, dict)]
    note = f"validation: {state}" + (f" ({', '.join(codes[:3])})" if codes else "")
    signals.append(
        Signal(
            "c2pa",
            "claim generator",
            _shorten(str(generator or "unknown"), 200),
            CREDENTIALS,
            _join(f"signed by {issuer}", note),
        )
    )
    for assertion in active.get("assertions") or []:
        if not isinstance(assertion, dict) or not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        for action in (assertion.get("data") or {}).get("actions") or []:
            if not isinstance(action, dict):
                continue
            source_type = str(action.get("digitalSourceType") or "")
            agent = action.get("softwareAgent")
            agent_name = agent.get("name") if isinstance(agent, dict) else agent
            name = str(action.get("action", "action"))
            if source_type:
                term = source_type.rstrip("/").rsplit("/", 1)[-1]
                suggests, meaning = _DIGITAL_SOURCE_TYPES.get(
                    term.lower(), (INFO, "unrecognised source type")
                )
                value = f"{name}: {term}" + (f" by {agent_name}" if agent_name else "")
                signals.append(Signal("c2pa", "digitalSourceType", _shorten(value, 300), suggests, meaning))
            elif agent_name:
                suggests = _classify_software(str(agent_name))
                signals.append(Signal("c2pa", name, _shorten(str(agent_name), 200), suggests))
            if len(signals) >= 10:
                return signals
    return signals


# ------------------------------------------------------------------------------------------- summary


def _summarise(report: MetadataReport) -> str:
    def keys(what: str) -> str:
        found = report.suggests(what)
        names = ", ".join(dict.fromkeys(f"{s.key}" for s in found[:4]))
        return names

    if report.suggests(AI_DECLARED):
        return (
            f"The file's metadata declares AI-generated content ({keys(AI_DECLARED)}). "
            "A declaration can be removed or forged; it does not change the model's verdict."
        )
    if report.suggests(GENERATOR):
        return (
            f"The file carries text typical of an image generator ({keys(GENERATOR)}). "
            "Such text can be added to any file; it does not change the model's verdict."
        )
    parts = []
    if report.suggests(CAMERA):
        parts.append(f"camera details ({keys(CAMERA)})")
    if report.suggests(EDITED):
        parts.append(f"editing hints ({keys(EDITED)})")
    if report.suggests(CREDENTIALS):
        parts.append("content credentials (C2PA)")
    if parts:
        return (
            f"The file's metadata has {' and '.join(parts)}, with no AI declaration. EXIF can be copied "
            "onto a generated image, so this is a weak hint only."
        )
    if report.signals and all(signal.suggests == ERROR for signal in report.signals):
        return "The metadata could not be read; this says nothing about the image."
    if report.signals:
        return (
            "The file has some metadata but nothing that points to a camera or a generator. "
            "This proves nothing either way."
        )
    return (
        "No metadata found. That proves nothing: most sites and apps strip metadata, from real photos "
        "and generated images alike."
    )


# ----------------------------------------------------------------------------------------------- utils


def _classify_software(value: str) -> str:
    low = value.lower()
    if any(name in low for name in _GENERATOR_NAMES):
        return GENERATOR
    if any(name in low for name in _EDITOR_NAMES):
        return EDITED
    return INFO


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _shorten(text: str, limit: int) -> str:
    text = text.replace("\r", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _join(*parts: str) -> str:
    return "; ".join(part for part in parts if part)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _reason(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else type(error).__name__
