"""The clip shape an exported model takes, read from its file, against the shape the config's test pipeline makes.

A model exported for 8 frames fed a config's 4-frame clips either fails deep inside the runtime or, worse,
predicts from the wrong input. :func:`check_model_input` compares the two before the first video and names
both shapes. The declared shape is read from the file itself: the ``.pdmodel`` ProgramDesc, the PIR ``.json``
data op, the ``.onnx`` graph input, or the OpenVINO ``.xml`` Parameter layer; a dynamic axis reads as None.
"""

import json
import os
import xml.etree.ElementTree as ElementTree

from .errors import PredictError

INPUT_NAME = "data_batch_0"  # the feed tools/export_model.py names (PaddleVideo's)


def declared_input_shape(model_file):
    """``[N, 3, V*T, H, W]`` of ``model_file``'s first input, None for dynamic axes; None when the format is
    unknown or the file does not say (the runtime then reports what it finds)."""
    readers = {".pdmodel": _pdmodel_shape, ".json": _pir_shape, ".onnx": _onnx_shape, ".xml": _openvino_shape}
    reader = readers.get(os.path.splitext(model_file)[1].lower())
    if reader is None or not os.path.isfile(model_file):
        return None
    try:
        shape = reader(model_file)
    except Exception:  # a file the runtime will refuse with its own message; not this check's business
        return None
    return None if shape is None else [None if (d is None or int(d) < 0) else int(d) for d in shape]


def _pdmodel_shape(path):
    from paddle.base.proto import framework_pb2

    program = framework_pb2.ProgramDesc()
    with open(path, "rb") as f:
        program.ParseFromString(f.read())
    for var in program.blocks[0].vars:
        if var.name == INPUT_NAME:
            return list(var.type.dense_tensor.tensor.dims)
    return None


def _pir_shape(path):
    with open(path, encoding="utf-8") as f:
        program = json.load(f)

    def walk(node):
        if isinstance(node, dict):
            attrs = node.get("A") if node.get("#") == "1.data" else None
            if isinstance(attrs, list):
                named = {a.get("N"): (a.get("AT") or {}).get("D") for a in attrs if isinstance(a, dict)}
                if named.get("name") == INPUT_NAME:
                    return named.get("shape")
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            return None
        for child in children:
            found = walk(child)
            if found is not None:
                return found
        return None

    return walk(program)


def _onnx_shape(path):
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    dims = graph.input[0].type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else None for d in dims]


def _openvino_shape(path):
    for layer in ElementTree.parse(path).getroot().iter("layer"):
        if layer.get("type") == "Parameter":
            data = layer.find("data")
            shape = data.get("shape", "") if data is not None else ""
            return [None if part.strip() in ("?", "-1") or ".." in part else int(part) for part in shape.split(",")]
    return None


def pipeline_input_shape(cfg):
    """``[None, 3, V*T, H, W]``: the batch the config's test pipeline makes (None where it depends on the video)."""
    from ..loader.builder import build_pipeline
    from ..tasks.loaders import expected_shape

    return [None, *expected_shape(cfg, build_pipeline(cfg.PIPELINE.test, section="PIPELINE.test"))]


def check_model_input(model_file, cfg):
    """Raise :class:`PredictError` naming both shapes when ``model_file`` cannot take the test pipeline's clips.

    Only axes both sides know are compared (the batch axis is dynamic in every export of this project).
    """
    declared = declared_input_shape(model_file)
    made = pipeline_input_shape(cfg)
    if declared is None:
        return
    if len(declared) != len(made) or any(a is not None and b is not None and a != b
                                         for a, b in zip(declared[1:], made[1:])):
        show = lambda shape: "[" + ", ".join("N" if d is None else str(d) for d in shape) + "]"  # noqa: E731
        raise PredictError(f"model '{model_file}' takes clips of shape {show(declared)} but the config's test "
                           f"pipeline makes {show(made)} (frames of all views x size); pass the config the model "
                           "was exported with, or export it again with this config")
