"""Stage 1, data: every input, local or on the Hub: the labels, safe image decoding, datasets (imagefolder or
Hub id, splits), loss weights, the bundled checkpoint's location and checkpoint downloads by repo id.

May import: nothing else of the package (the lowest stage). Lower stages never import higher ones (tests/test_layers.py).
"""
