"""Exported model files, checked before a runtime parses them: present, a readable program (a corrupt one can
crash a parser), and nothing that reaches outside the file (a model may come from elsewhere):

- ``.onnx``: a tensor may keep its data in another file (``external_data`` ``location``). ONNX Runtime and
  OpenVINO open that path relative to the model; a model from elsewhere could name ``/etc/shadow``,
  ``../../home/you/.ssh/id_rsa`` or a symlink leading out, and have its bytes read as weights. Every location
  must be a relative path that stays inside the model's folder (symlinks resolved).
- OpenVINO ``.xml``: its IR never uses a document type, so a ``<!DOCTYPE`` (the carrier of entity expansion
  bombs and external entities that read local files) is refused before any XML parser builds the document.

``.pdmodel`` (protobuf) and PIR ``.json`` carry no references to other files and no entities; they are parsed
by Paddle itself, which reports a broken file in its own words.
"""

import json
import os
import xml.parsers.expat

from ..common.errors import InputError, first_line
from .errors import PredictError


def check_file(path, what):
    if not path:
        raise PredictError(f"no {what} given")
    if not os.path.isfile(path):
        raise PredictError(f"{what} '{path}' not found")


def check_program_file(model_file):
    """Reject an unreadable model file before Paddle parses it (a corrupt ``.pdmodel`` can crash the process)."""
    if model_file.endswith(".json"):
        try:
            with open(model_file, encoding="utf-8") as f:
                json.load(f)
        except (ValueError, UnicodeDecodeError) as err:
            raise PredictError(f"model file '{model_file}' is not a Paddle PIR program ({first_line(err)}); "
                               "re-export it with tools/export_model.py") from None
        return
    from paddle.base.proto import framework_pb2

    desc = framework_pb2.ProgramDesc()
    try:
        with open(model_file, "rb") as f:
            desc.ParseFromString(f.read())
    except Exception as err:  # protobuf's DecodeError, or any truncation error
        raise PredictError(f"model file '{model_file}' is not a Paddle program ({first_line(err)}); "
                           "re-export it with tools/export_model.py") from None
    if not desc.blocks or not desc.blocks[0].ops:
        raise PredictError(f"model file '{model_file}' holds no operators; re-export it with tools/export_model.py")




class UnsafeModelFileError(InputError):
    """An exported model file refers outside its folder or carries XML declarations its format never has."""


def check_model_file(path):
    """Refuse ``path`` (``.onnx`` / ``.xml``; other formats pass) when it is unsafe to hand to a runtime."""
    ext = os.path.splitext(str(path))[1].lower()
    if ext == ".onnx":
        check_onnx_external_data(path)
    elif ext == ".xml":
        check_plain_xml(path)


def _tensors(graph):
    """Every TensorProto of ``graph``: initializers, sparse ones, node attributes, nested subgraphs."""
    for tensor in graph.initializer:
        yield tensor
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _tensors(attribute.g)
            for sub in attribute.graphs:
                yield from _tensors(sub)


def check_onnx_external_data(path):
    """Raise :class:`UnsafeModelFileError` when a tensor of the ONNX model ``path`` keeps its data in a file
    outside the model's folder (absolute path, ``..``, or a symlink leading out). A file ONNX cannot parse
    is left to the runtime's own message."""
    try:
        import onnx  # installed with paddle2onnx; without it, ONNX Runtime's own path check is what remains
    except ImportError:
        return
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # not ONNX: the runtime says so
        return
    folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    for tensor in _tensors(model.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = {entry.key: entry.value for entry in tensor.external_data}.get("location", "")
        target = os.path.realpath(os.path.join(folder, location))
        if not location or os.path.isabs(location) or os.path.commonpath([folder, target]) != folder:
            raise UnsafeModelFileError(
                f"'{path}': tensor '{tensor.name}' keeps its data in '{location}', outside the model's folder "
                f"'{folder}'; refusing to load it (an exported model's data files sit beside it)")


class _Refused(Exception):
    pass


class _RootReached(Exception):
    pass


def check_plain_xml(path):
    """Raise :class:`UnsafeModelFileError` when the XML file ``path`` declares a document type (entities).
    Only the prolog is read: a DOCTYPE must come before the root element."""
    parser = xml.parsers.expat.ParserCreate()

    def refuse(*_):
        raise _Refused

    def root(*_):
        raise _RootReached

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.StartElementHandler = root
    try:
        with open(path, "rb") as f:
            parser.ParseFile(f)
    except _Refused:
        raise UnsafeModelFileError(f"'{path}' declares a document type (<!DOCTYPE ...>), which an OpenVINO model "
                                   "never has: it can expand entities or read other files; refusing to load "
                                   "it") from None
    except (_RootReached, xml.parsers.expat.ExpatError):  # the prolog is clean / the runtime reports bad XML
        return
