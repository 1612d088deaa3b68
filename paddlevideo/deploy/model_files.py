"""Checks of exported model files before a runtime parses them (a corrupt program can crash a parser)."""

import json
import os

from ..utils.errors import first_line
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
