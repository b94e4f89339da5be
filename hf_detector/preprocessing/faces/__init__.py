"""The face detectors, one module each: `mtcnn` (facenet-pytorch), `mtcnn_onnx` (its networks on ONNX
Runtime, crops in numpy), `blazeface` (MediaPipe's network rebuilt in torch); `base` (Face, FaceCrop) and
`registry` (FACE_DETECTORS by name). Part of the preprocessing stage.
"""
