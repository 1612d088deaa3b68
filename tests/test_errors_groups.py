"""Every error class a user can meet belongs to exactly one of the four groups of ``paddlevideo.common.errors``
(what the user must fix: the config, an input, an output, or the run), and the names callers catch stay
importable with the group they had. Imports every module of the library, so a class added anywhere is checked."""

import importlib
import pkgutil

import pytest

import paddlevideo
from paddlevideo.common.errors import ConfigError, InputError, OutputError, RunError, UserError

GROUPS = (ConfigError, InputError, OutputError, RunError)
# Modules that need an optional package to import at all (none today: each imports it where it is used).
OPTIONAL = ()


def _library_modules():
    names = [info.name for info in pkgutil.walk_packages(paddlevideo.__path__, "paddlevideo.")]
    return [importlib.import_module(name) for name in names if not name.endswith("__main__") and name not in OPTIONAL]


def _user_errors():
    found = {}
    for module in _library_modules():
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, UserError) and value.__module__.startswith("paddlevideo"):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return found


def test_every_user_error_is_in_exactly_one_group():
    errors = _user_errors()
    assert len(errors) > 15, sorted(errors)  # the walk found the library's classes, not an empty set
    for name, cls in errors.items():
        if cls is UserError:
            continue
        groups = [group.__name__ for group in GROUPS if issubclass(cls, group)]
        assert len(groups) == 1, f"{name} is in {groups or 'no group'}"


@pytest.mark.parametrize("module, name, group, builtin", [
    ("paddlevideo.loader.list_files", "ListFileError", InputError, ValueError),
    ("paddlevideo.loader.list_files", "ListFileNotFoundError", InputError, FileNotFoundError),
    ("paddlevideo.loader.decoders", "VideoOpenError", InputError, RuntimeError),
    ("paddlevideo.loader.decoders", "VideoDecodeError", InputError, RuntimeError),
    ("paddlevideo.loader.dataset.video", "BrokenVideosError", InputError, RuntimeError),
    ("paddlevideo.loader.pipelines.compose", "PipelineError", ConfigError, ValueError),
    ("paddlevideo.loader.pipelines.compose", "PipelineKeyError", ConfigError, KeyError),
    ("paddlevideo.loader.failures", "LoaderError", RunError, RuntimeError),
    ("paddlevideo.common.save_load", "CheckpointWriteError", OutputError, OSError),
    ("paddlevideo.common.save_load", "CheckpointReadError", InputError, ValueError),
    ("paddlevideo.common.save_load", "CheckpointNotFoundError", InputError, FileNotFoundError),
    ("paddlevideo.common.logger", "LogFileError", OutputError, Exception),
    ("paddlevideo.modeling.weights", "CheckpointError", InputError, ValueError),
    ("paddlevideo.modeling.convert", "ConversionError", InputError, ValueError),
    ("paddlevideo.deploy.export", "ExportError", ConfigError, ValueError),
    ("paddlevideo.deploy.quantize", "QuantizeError", InputError, RuntimeError),
    ("paddlevideo.deploy.errors", "PredictError", InputError, ValueError),
    ("paddlevideo.tasks.run_files", "RunDirError", RunError, RuntimeError),
    ("paddlevideo.tasks.run_files", "ResumeError", RunError, RuntimeError),
    ("paddlevideo.tasks.train", "TrainingDiverged", RunError, RuntimeError),
    ("paddlevideo.tasks.train", "ValidationError", RunError, RuntimeError),
    ("paddlevideo.metrics.center_crop", "MetricError", RunError, RuntimeError),
    ("paddlevideo.visualization.files", "VisualizationError", InputError, ValueError),
])
def test_names_callers_catch_keep_their_group_and_builtin_base(module, name, group, builtin):
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, group) and issubclass(cls, builtin)
    message = "'x.list' line 3: a message that names the file"
    err = cls(message)
    assert str(err) == message or (issubclass(cls, KeyError) and err.args[0] == message)
