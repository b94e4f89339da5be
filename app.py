"""hf-detector: is the face in this photo real or AI-generated? (Gradio app / Hugging Face Space entry point)

Thin: the layout and handlers are `hf_detector.app.ui`; this file only starts them.

    python app.py                      # bundled default model, http://127.0.0.1:7860
    python app.py --port 7861          # or GRADIO_SERVER_PORT=7861
    MODEL_ID=user/repo MODEL_REVISION=v1 python app.py   # another checkpoint (Hub repo id or local path)

On a Space (`app_file: app.py`) set MODEL_ID (and optionally MODEL_REVISION) in the Space variables;
GRADIO_SERVER_NAME / GRADIO_SERVER_PORT are set by the Space runtime.
"""

from __future__ import annotations

from hf_detector.app.ui import build_demo, launch_kwargs, load_detector, main

__all__ = ["build_demo", "launch_kwargs", "load_detector", "main"]

if __name__ == "__main__":
    main()
