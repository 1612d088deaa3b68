"""Frameworks (registered in ``RECOGNIZERS``)."""

from .recognizer_transformer import RecognizerTransformer

__all__ = ["RecognizerTransformer"]
