"""hf-detector: is the face in this photo real or AI-generated? (the Gradio app; `app.py` is its Space entry point)

The app's layout and handlers, over the stages below: `hf_detector.inference.detector.Detector` decides, `hf_detector.signals.gradcam` draws Grad-CAM,
`hf_detector.signals.metadata` reads EXIF / PNG text / XMP / C2PA hints. Nothing here changes a prediction.

    python app.py                      # bundled default model, http://127.0.0.1:7860
    python app.py --port 7861          # or GRADIO_SERVER_PORT=7861
    MODEL_ID=user/repo MODEL_REVISION=v1 python app.py   # another checkpoint (Hub repo id or local path)

On a Space (`app_file: app.py`) set MODEL_ID (and optionally MODEL_REVISION) in the Space variables;
GRADIO_SERVER_NAME / GRADIO_SERVER_PORT are set by the Space runtime.

Stage: app (imports every stage below it; nothing in the package imports this).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
import time
import traceback
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a privacy-sensitive tool

import gradio as gr  # noqa: E402
from gradio_client import utils as client_utils  # noqa: E402
from PIL import Image  # noqa: E402

from hf_detector.data.extras import TORCH_MODULES, message, missing  # noqa: E402
from hf_detector.data.images import MAX_FILE_BYTES, ImageLoadError, load_image  # noqa: E402
from hf_detector.inference.detector import Detector, FileResult, ModelLoadError, Prediction  # noqa: E402
from hf_detector.signals.metadata import read_metadata  # noqa: E402

HERE = Path(__file__).resolve().parents[2]  # the project (or Space) root, where app.py and examples/ live
EXAMPLES_DIR = HERE / "examples"
EXAMPLES = [  # provenance and licences: examples/PROVENANCE.md
    "real_ffhq_01002.jpg",
    "real_ffhq_01005.jpg",
    "fake_stylegan2_omi_104.jpg",
    "fake_stylegan2_omi_111.jpg",
]
EXAMPLES_CAPTION = "Examples (one click each): two real photos (FFHQ), then two StyleGAN2 faces"

UNCERTAIN_BAND = 0.10  # |p(fake) - threshold| below this is reported as uncertain
MAX_UPLOAD = "10mb"  # per file, enforced by Gradio before anything reaches Python
MAX_BATCH_FILES = 200
MAX_ZIP_TOTAL_BYTES = 200 * 1024 * 1024
DISPLAY_SIDE = 768  # the boxed image is shrunk to this for display
CONCURRENCY = 2
QUEUE_SIZE = 32
CACHE_MAX_AGE_S = 3600  # uploads, results and CSVs are deleted after about an hour
BATCH_COLUMNS = ["file", "verdict", "p_fake", "face_found", "error"]
HEATMAP_LABEL = "Grad-CAM: regions that drove the verdict"

CSS = """
#verdict { font-size: 1.15rem; }
#verdict .uncertain { color: #b45309; }
.hint-box { border-left: 4px solid #9ca3af; padding-left: 0.75rem; }
"""

INTRO = """
# Real or generated face?
Drop a photo with a face. The model finds the face, crops it the way it was trained, and says how likely
the face is **AI-generated** (GAN or diffusion) — with a heatmap of the pixels that drove its answer.
It is a research model: treat its answer as one clue, not a verdict on a person.
"""

ABOUT = """
## What this is
A small image classifier (`{model}`) trained to tell real face photos from GAN (StyleGAN2/3) and
diffusion (Stable Diffusion 2.1) faces. Every photo goes through the same steps as in training:
{framing}, resized, then the classifier. The decision
threshold ({threshold:.2f}) was chosen on validation data; results within ±{band:.2f} of it are
reported as *uncertain*.

## How to read the result
- **p(fake)** is the model's probability that the face is generated. It is not a proof, and it can be
  confidently wrong: new generators, heavy compression, filters, screenshots of screens, drawings and
  very small faces are all outside what it was trained on.
- **Grad-CAM** shows which regions of the crop pushed the score towards the predicted class. It shows
  where the model looked, not *why* a face is fake.
- **Metadata hints** (EXIF camera, generator text in PNG files, IPTC/XMP `DigitalSourceType`, C2PA
  content credentials) are shown apart from the verdict and never change it: metadata is stripped by
  most sites and can be forged. Its absence proves nothing.

## Limits and privacy
Files up to {max_upload} each; a batch takes up to {max_batch} files (or zips). Uploads live in this
server's temporary cache and are deleted after about an hour; nothing is fetched from URLs. Do not use
this tool to make decisions about people.
"""


# ------------------------------------------------------------------------------ output image cache


def _save_pil_to_cache_atomically(img: Image.Image, cache_dir: str, name: str = "image",
                                  format: str = "webp") -> str:
    """gradio's `save_pil_to_cache`, but the file is written under a temporary name and renamed into place.

    The cache is content-addressed: two users who get the same output image (the same example clicked
    twice) share one path, and gradio rewrites it in place, so a download already streaming it could read
    a truncated file ("peer closed connection ... received 0 bytes", seen under 20 concurrent users).
    A rename never changes a file a reader already has open; an existing file already holds these bytes.
    """
    from gradio import processing_utils

    data = processing_utils.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    target = (folder / f"{name}.{format}").resolve()
    if not target.exists():
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temporary, target)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    return str(target)


def _patch_gradio_image_cache() -> None:
    from gradio import processing_utils

    processing_utils.save_pil_to_cache = _save_pil_to_cache_atomically  # image outputs call it by module


# ----------------------------------------------------------------------------------- input components


# Gradio components are configured per instance rather than subclassed: subclassing a component makes
# Gradio write a `.pyi` stub next to this file at import time.
_NO_URLS = "URLs are not fetched: download the image and upload the file itself."


def _refuse_urls(component: gr.components.Component) -> gr.components.Component:
    """Never fetch an http(s) "file" a client names: this app does not download on a user's behalf."""
    original_async = component.async_move_resource_to_block_cache
    original_sync = component.move_resource_to_block_cache

    async def move_async(url_or_file_path: str | Path | None) -> str | None:
        if url_or_file_path is not None and client_utils.is_http_url_like(str(url_or_file_path)):
            raise gr.Error(_NO_URLS, print_exception=False)
        return await original_async(url_or_file_path)

    def move_sync(url_or_file_path: str | Path | None) -> str | None:
        if url_or_file_path is not None and client_utils.is_http_url_like(str(url_or_file_path)):
            raise gr.Error(_NO_URLS, print_exception=False)
        return original_sync(url_or_file_path)

    component.async_move_resource_to_block_cache = move_async  # type: ignore[method-assign]
    component.move_resource_to_block_cache = move_sync  # type: ignore[method-assign]
    return component


def upload_image(**kwargs: Any) -> gr.Image:
    """`gr.Image(type="filepath")` that hands the *original* upload to the package undecoded.

    Gradio's own preprocessing opens the file with PIL first, so a non-image would fail there with a
    raw error naming a server path; here every file reaches `hf_detector.data.images.load_image`, whose
    one-line `ImageLoadError` becomes the message the user sees. The original bytes keep their metadata.
    """
    component = gr.Image(type="filepath", image_mode=None, **kwargs)
    gradio_preprocess = component.preprocess

    def preprocess(payload: Any) -> str | None:
        if payload is None:
            return None
        if payload.url and payload.url.startswith("data:"):  # clipboard / webcam sent as a data URL
            try:
                return gradio_preprocess(payload)  # type: ignore[return-value]
            except Exception as error:
                raise gr.Error(f"Could not read the pasted image ({_first_line(error)}).",
                               print_exception=False) from None
        return str(payload.path) if payload.path else None

    component.preprocess = preprocess  # type: ignore[method-assign]
    return _refuse_urls(component)


def decision_label(**kwargs: Any) -> gr.Label:
    """`gr.Label` whose headline is the detector's decision (p(fake) vs its tuned threshold), not the
    arg-max: with a threshold of 0.26, p(fake) = 0.40 is "fake" although "real" has the larger bar.
    The output keeps the standard `{label, confidences}` form."""
    from gradio.components.label import LabelConfidence, LabelData

    component = gr.Label(**kwargs)
    gradio_postprocess = component.postprocess

    def postprocess(value: Any) -> Any:
        if isinstance(value, dict) and "decision" in value:
            ranked = sorted(value["probabilities"].items(), key=lambda item: item[1], reverse=True)
            return LabelData(label=value["decision"],
                             confidences=[LabelConfidence(label=k, confidence=v) for k, v in ranked])
        return gradio_postprocess(value)

    component.postprocess = postprocess  # type: ignore[method-assign]
    return component


# ------------------------------------------------------------------------------------------ wording


def _p(value: float) -> str:
    """p(fake) with two decimals, without rounding a near-certain score to a certain one."""
    if value >= 0.995:
        return "> 0.99"
    if value < 0.005:
        return "< 0.01"
    return f"= {value:.2f}"


def verdict_sentence(p_fake: float, threshold: float, band: float = UNCERTAIN_BAND) -> str:
    """One honest sentence: the verdict, p(fake) and threshold, or "uncertain" near the threshold."""
    if abs(p_fake - threshold) < band:
        return (f"Uncertain: p(fake) {_p(p_fake)} is within {band:.2f} of the threshold {threshold:.2f}; "
                "do not rely on this result.")
    if p_fake >= threshold:
        return f"Likely AI-generated (p(fake) {_p(p_fake)}; threshold {threshold:.2f})."
    return f"Likely a real photo (p(fake) {_p(p_fake)}; threshold {threshold:.2f})."


def verdict_word(p_fake: float, threshold: float, band: float = UNCERTAIN_BAND) -> str:
    if abs(p_fake - threshold) < band:
        return "uncertain"
    return "fake" if p_fake >= threshold else "real"


def _face_sentence(prediction: Prediction) -> str:
    if not prediction.face_found:
        return ("No face was detected, so the model looked at the centre of the image instead; "
                "the result is less reliable.")
    count = len(prediction.faces)
    method = {"aligned": "aligned on eyes, nose and mouth", "box": "cropped around the face box",
              "context": "framed with its surroundings"}.get(
        prediction.crop_method, prediction.crop_method)
    more = f" {count} faces found; the largest one was analysed." if count > 1 else ""
    return f"Face found ({method}).{more}"


def _input_notes(path: str) -> list[str]:
    """What the loader did to this file (first frame, colour conversion), read from the header only."""
    notes: list[str] = []
    try:
        with Image.open(path) as image:
            frames = getattr(image, "n_frames", 1)
            if frames > 1:
                notes.append(f"Animated image ({frames} frames): only the first frame was analysed.")
            if image.mode == "CMYK":
                notes.append("CMYK image: converted to RGB.")
            elif image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                notes.append(f"High bit depth ({image.mode}): reduced to 8 bits per channel.")
            elif image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                notes.append("Transparent areas were filled with white.")
    except Exception:  # the loader already accepted the file; notes are optional
        pass
    return notes


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _user_message(error: BaseException, name: str | None = None) -> str:
    """Strip server paths from loader messages: the user knows their file by its name."""
    message = _first_line(error)
    if name:
        message = message.replace(name, "").lstrip(": ").strip() or message
    return message[0].upper() + message[1:] if message else "Could not read this file."


# ----------------------------------------------------------------------------------------- drawing


def draw_faces(image: Image.Image, prediction: Prediction, max_side: int = DISPLAY_SIDE) -> Image.Image:
    """The input with every detected face boxed (the analysed one thicker) and its landmarks dotted."""
    from PIL import ImageDraw

    scale = min(1.0, max_side / max(image.size))
    shown = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale)))) \
        if scale < 1.0 else image.copy()
    draw = ImageDraw.Draw(shown)
    colour = {"fake": (220, 38, 38), "real": (22, 163, 74), "uncertain": (217, 119, 6)}[
        verdict_word(prediction.p_fake, prediction.threshold)]
    width = max(2, round(max(shown.size) / 200))
    for index, face in enumerate(prediction.faces):
        x0, y0, x1, y1 = (float(v) * scale for v in face.box)
        draw.rectangle((x0, y0, x1, y1), outline=colour if index == 0 else (250, 204, 21),
                       width=width if index == 0 else max(1, width // 2))
        if index == 0 and face.landmarks is not None:
            radius = max(2, width)
            for x, y in face.landmarks:
                x, y = float(x) * scale, float(y) * scale
                draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(59, 130, 246))
    return shown


def _enlarge(image: Image.Image | None, min_side: int = 256) -> Image.Image | None:
    """Small crops (the model may see 128 px) shown bigger by whole-pixel repetition: no new detail."""
    if image is None or min(image.size) >= min_side:
        return image
    factor = -(-min_side // min(image.size))
    return image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)


# ---------------------------------------------------------------------------------------- handlers


def make_classify(detector: Detector):
    def classify(image: str | None) -> tuple[dict[str, Any], str, Image.Image, Image.Image | None,
                                              Image.Image | None, str]:
        """Classify one face photo: label probabilities, verdict, boxed face, crop, Grad-CAM, metadata hints."""
        if not image:
            raise gr.Error("Upload a photo first (or click an example).", print_exception=False)
        name = str(image)
        try:
            size = os.path.getsize(name)
            if size > MAX_FILE_BYTES:
                raise ImageLoadError(f"file is {size >> 20} MB, above the {MAX_FILE_BYTES >> 20} MB limit")
            rgb = load_image(name)
            prediction = detector.predict(rgb)
        except ImageLoadError as error:
            raise gr.Error(f"This file cannot be analysed: {_user_message(error, name)}",
                           print_exception=False) from None
        except OSError as error:
            raise gr.Error(f"This file cannot be read: {_first_line(error)}", print_exception=False) from None
        except Exception:  # a bug, not the user's fault: log it, answer plainly, keep serving
            traceback.print_exc()
            raise gr.Error("Something went wrong while analysing this image; please try another file.",
                           print_exception=False) from None
        heatmap: Any = None
        absent = missing(*TORCH_MODULES, "pytorch_grad_cam")
        if absent:  # the light install: the prediction stands, the panel says what Grad-CAM needs
            heatmap = gr.Image(value=None, label=f"{HEATMAP_LABEL} ({message('Grad-CAM', 'torch', absent)})")
        else:
            try:
                from hf_detector.signals.gradcam import gradcam_overlay  # torch: loaded on first use

                heatmap = _enlarge(gradcam_overlay(detector, prediction))
            except Exception as error:  # an explanation failure must not hide the prediction
                print(f"Grad-CAM failed: {_first_line(error)}", file=sys.stderr)
        report = read_metadata(name)
        probabilities = {label: float(prediction.probabilities.get(label, 0.0)) for label in ("real", "fake")}
        verdict = verdict_sentence(prediction.p_fake, prediction.threshold)
        notes = " ".join([_face_sentence(prediction), *_input_notes(name)])
        verdict_md = f"### {verdict}\n\n{notes}"
        label = {"decision": prediction.label, "probabilities": probabilities}
        return (label, verdict_md, draw_faces(rgb, prediction), _enlarge(prediction.crop),
                heatmap, report.to_markdown())

    return classify


def _expand_uploads(files: Sequence[Any], workdir: Path) -> tuple[list[tuple[str, str]], list[list[Any]]]:
    """Uploaded paths (and the members of uploaded zips) -> [(display name, path)], error rows.

    Zips are read member by member with hard limits (count, sizes, no path traversal: members are
    written under generated names); nested zips are not opened.
    """
    items: list[tuple[str, str]] = []
    errors: list[list[Any]] = []
    for index, file in enumerate(files or []):
        path = Path(file if isinstance(file, (str, os.PathLike)) else getattr(file, "name", str(file)))
        display = path.name
        if path.suffix.lower() != ".zip":
            items.append((display, str(path)))
            continue
        try:
            with zipfile.ZipFile(path) as archive:
                total = 0
                for member_index, member in enumerate(archive.infolist()):
                    if member.is_dir() or member.filename.startswith("__MACOSX/"):
                        continue
                    member_name = f"{display}/{member.filename}"
                    if len(items) >= MAX_BATCH_FILES:
                        errors.append([member_name, "error", None, None, f"skipped: more than {MAX_BATCH_FILES} files"])
                        break
                    if member.file_size > MAX_FILE_BYTES:
                        errors.append([member_name, "error", None, None,
                                       f"file is {member.file_size >> 20} MB, above the {MAX_FILE_BYTES >> 20} MB limit"])
                        continue
                    total += member.file_size
                    if total > MAX_ZIP_TOTAL_BYTES:
                        errors.append([member_name, "error", None, None,
                                       f"zip expands to more than {MAX_ZIP_TOTAL_BYTES >> 20} MB; rest skipped"])
                        break
                    target = workdir / f"{index:03d}_{member_index:05d}{Path(member.filename).suffix.lower()[:8]}"
                    with archive.open(member) as source, open(target, "wb") as sink:
                        shutil.copyfileobj(source, sink, 1 << 20)
                        if sink.tell() > MAX_FILE_BYTES:
                            raise zipfile.BadZipFile(f"{member.filename}: larger than declared")
                    items.append((member_name, str(target)))
        except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError) as error:
            errors.append([display, "error", None, None, f"cannot open zip ({_first_line(error)})"])
    if len(items) > MAX_BATCH_FILES:
        for name, _ in items[MAX_BATCH_FILES:]:
            errors.append([name, "error", None, None, f"skipped: more than {MAX_BATCH_FILES} files"])
        items = items[:MAX_BATCH_FILES]
    return items, errors


def _batch_workdir(max_age_s: float = CACHE_MAX_AGE_S) -> Path:
    """A fresh folder for one batch (extracted zip members, the CSV); older ones are removed."""
    root = Path(tempfile.gettempdir()) / "hf-detector-batches"
    root.mkdir(exist_ok=True)
    now = time.time()
    for old in root.iterdir():
        try:
            if old.is_dir() and now - old.stat().st_mtime > max_age_s:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    return Path(tempfile.mkdtemp(prefix="batch-", dir=root))


def make_classify_batch(detector: Detector):
    def classify_batch(files: list[str] | None, progress: gr.Progress = gr.Progress()  # noqa: B008
                       ) -> tuple[list[list[Any]], str | None, str]:
        """Classify many files (images or zips of images): table rows, CSV file, summary."""
        if not files:
            raise gr.Error("Upload some image files or a zip first.", print_exception=False)
        workdir = _batch_workdir()
        items, errors = _expand_uploads(files, workdir)
        rows: list[list[Any]] = []
        total = len(items)
        progress((0, total), desc="Classifying", unit="files")
        start = time.perf_counter()
        results: list[FileResult] = []
        for done, result in enumerate(detector.iter_files([path for _, path in items], batch_size=8), 1):
            results.append(result)
            progress((done, total), desc="Classifying", unit="files")
        for (name, path), result in zip(items, results, strict=True):
            if result.error is not None or result.prediction is None:
                rows.append([name, "error", None, None, _user_message(ValueError(result.error or "failed"), path)])
                continue
            prediction = result.prediction
            rows.append([name, verdict_word(prediction.p_fake, prediction.threshold), round(prediction.p_fake, 4),
                         bool(prediction.face_found), ""])
        rows += errors
        csv_path = workdir / "hf-detector-results.csv"
        with open(csv_path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(BATCH_COLUMNS)
            writer.writerows(rows)
        failed = [row for row in rows if row[1] == "error"]
        counts = {word: sum(row[1] == word for row in rows) for word in ("fake", "real", "uncertain")}
        summary = (f"**{len(rows) - len(failed)} of {len(rows)} files classified** in "
                   f"{time.perf_counter() - start:.1f} s: {counts['fake']} likely generated, "
                   f"{counts['real']} likely real, {counts['uncertain']} uncertain.")
        if failed:
            summary += "\n\n**Could not analyse:**\n" + "\n".join(f"- `{row[0]}`: {row[4]}" for row in failed[:50])
            if len(failed) > 50:
                summary += f"\n- … and {len(failed) - 50} more (see the CSV)"
        for _, path in items:  # extracted zip members are not needed any more (the CSV stays)
            if Path(path).parent == workdir:
                Path(path).unlink(missing_ok=True)
        return rows, str(csv_path), summary

    return classify_batch


# ---------------------------------------------------------------------------------------------- UI


def build_demo(detector: Detector, model_name: str | None = None) -> gr.Blocks:
    """The whole app around one loaded detector (tests build it around a tiny model)."""
    _patch_gradio_image_cache()
    name = model_name or getattr(detector, "name", "model")
    classify = make_classify(detector)
    classify_batch = make_classify_batch(detector)
    examples = [[str(EXAMPLES_DIR / file)] for file in EXAMPLES if (EXAMPLES_DIR / file).exists()]

    with gr.Blocks(title="Real or generated face? — hf-detector",
                   delete_cache=(CACHE_MAX_AGE_S // 2, CACHE_MAX_AGE_S)) as demo:
        gr.Markdown(INTRO)
        with gr.Tabs():
            with gr.Tab("Single image", id="single"):
                with gr.Row():
                    with gr.Column(scale=1):
                        image = upload_image(sources=["upload", "clipboard", "webcam"],
                                             label="Photo with a face", height=360, elem_id="input-image")
                        run = gr.Button("Analyse", variant="primary", elem_id="analyse")
                        example_box = gr.Column()
                    with gr.Column(scale=1):
                        label = decision_label(num_top_classes=2, elem_id="label",
                                               label="Model decision and probabilities")
                        verdict = gr.Markdown(elem_id="verdict")
                        boxed = gr.Image(label="Detected face", type="pil", format="jpeg", interactive=False,
                                         elem_id="boxed", height=260)
                with gr.Row():
                    crop = gr.Image(label="What the model saw", type="pil", format="png",
                                    interactive=False, elem_id="crop", height=260)
                    heatmap = gr.Image(label=HEATMAP_LABEL, type="pil",
                                       format="png", interactive=False, elem_id="heatmap", height=260)
                with gr.Accordion("Metadata hints (weak, not used by the model)", open=True):
                    hints = gr.Markdown(elem_id="metadata", elem_classes=["hint-box"])
                outputs = [label, verdict, boxed, crop, heatmap, hints]
                run.click(classify, inputs=[image], outputs=outputs, api_name="classify")
                image.upload(classify, inputs=[image], outputs=outputs, api_visibility="private")
                with example_box:
                    gr.Examples(examples=examples, inputs=[image], outputs=outputs, fn=classify,
                                run_on_click=True, cache_examples=False, api_visibility="private",
                                label=EXAMPLES_CAPTION, examples_per_page=8)
            with gr.Tab("Batch", id="batch"):
                gr.Markdown(f"Upload up to {MAX_BATCH_FILES} images, or zips of images ({MAX_UPLOAD.upper()} per "
                            "file). Files that cannot be read are listed with the reason; the others are still "
                            "classified. Download the table as CSV below.")
                files = _refuse_urls(gr.File(file_count="multiple", label="Images or a zip",
                                             elem_id="batch-files"))
                run_batch = gr.Button("Classify all", variant="primary", elem_id="classify-all")
                summary = gr.Markdown(elem_id="batch-summary")
                table = gr.Dataframe(headers=BATCH_COLUMNS, datatype=["str", "str", "number", "bool", "str"],
                                     interactive=False, wrap=True, label="Results", elem_id="batch-table")
                download = gr.File(label="Results (CSV)", interactive=False, elem_id="batch-csv")
                run_batch.click(classify_batch, inputs=[files], outputs=[table, download, summary],
                                api_name="classify_batch", concurrency_limit=1)
            with gr.Tab("About", id="about"):
                gr.Markdown(ABOUT.format(model=name, framing=detector.processor.describe_framing().capitalize(),
                                         threshold=detector.threshold, band=UNCERTAIN_BAND,
                                         max_upload=MAX_UPLOAD.upper(), max_batch=MAX_BATCH_FILES))
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    return demo


def launch_kwargs(server_name: str | None = None, server_port: int | None = None) -> dict[str, Any]:
    """The launch settings shared by `python app.py`, the Space and the tests."""
    return {
        "server_name": server_name or os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        "server_port": server_port or int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        "max_file_size": MAX_UPLOAD,
        "show_error": True,
        # System fonts: the page loads nothing from third-party servers (works offline, no font CDN).
        "theme": gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"],
                                font_mono=["ui-monospace", "monospace"]),
        "css": CSS,
    }


def load_detector(model: str | None = None, revision: str | None = None) -> Detector:
    """MODEL_ID / MODEL_REVISION from the environment unless given; None = the bundled default."""
    model = model or os.environ.get("MODEL_ID") or None
    revision = revision or os.environ.get("MODEL_REVISION") or None
    return Detector.from_pretrained(model, revision=revision)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=None, help="default: $GRADIO_SERVER_PORT or 7860")
    parser.add_argument("--host", default=None, help="default: $GRADIO_SERVER_NAME or 127.0.0.1")
    parser.add_argument("--model", default=None, help="Hub repo id or local checkpoint (default: $MODEL_ID "
                        "or the bundled model)")
    parser.add_argument("--revision", default=None, help="default: $MODEL_REVISION")
    args = parser.parse_args(argv)
    try:
        detector = load_detector(args.model, args.revision)
    except ModelLoadError as error:
        sys.exit(f"hf-detector app: {error}")
    demo = build_demo(detector)
    demo.launch(**launch_kwargs(args.host, args.port))


if __name__ == "__main__":
    main()
