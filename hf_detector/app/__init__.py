"""Stage 10, app: the Gradio app (`ui`: layout, handlers, launch settings); `app.py` at the project root is
its thin Space entry point.

May import: every stage below (data ... training). Lower stages never import higher ones (tests/test_layers.py).
"""
