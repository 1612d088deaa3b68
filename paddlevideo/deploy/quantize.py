"""Post-training static int8 quantization of an exported model with NNCF (``tools/quantize.py``).

Calibration clips are the user's own videos, listed like a test list (``relative/path label`` per line) and
made by the config's test pipeline through the project's ``VideoDataset`` (the code ``main.py --test`` uses),
so the int8 ranges see exactly what inference sees. A clip that cannot be read is skipped and named.

NNCF is called with ``preset=MIXED`` (symmetric int8 weights, asymmetric activations) and
``model_type=TRANSFORMER``. With these settings NNCF quantizes the inputs of the patch-embedding
convolution, of every Linear and of the attention scores ``q @ k^T``, and leaves in float (run in fp32 by
``backends.openvino_runtime.INT8_FLOAT_PRECISION``): softmax and the product of its output with ``v``, LayerNorm, GELU,
the residual additions, the view averaging, and the classification head (:data:`FLOAT_HEAD`, an ignored
scope found by :func:`head_matmuls`). ``docs/deploy.md`` has the counts for ViT-B.

``openvino`` and ``nncf`` are imported inside the functions only.
"""

import contextlib
import os
import sys

from ..common.files import os_error_reason, prepare_output_dir
from ..common.errors import InputError, OutputError
from ..common.logger import get_logger
from ..common.overwrite import refuse_overwriting_inputs
from ..common.staging import staged_files
from .backends.openvino_runtime import import_openvino, int8_model_path, read_model
from .model_files import check_file
from .provenance import check_model_files, companion_files, derived_record, is_int8, sidecar_path, write_record

DEFAULT_NUM_CLIPS = 300  # NNCF's default subset size
FLOAT_HEAD = True  # keep the classifier's matmul in float: its int8 error lands directly on the logits


class QuantizeError(InputError, RuntimeError):
    """Quantization cannot proceed (calibration list, clips, model file); one line naming the file."""


def calibration_dataset(cfg, calib_list, data_prefix=None):
    """A test-mode ``VideoDataset`` over ``calib_list`` with ``cfg.PIPELINE.test`` (items ``(imgs [3, V*T, H, W],
    label, index)``, or None for a clip that cannot be read). ``data_prefix`` defaults to the test set's."""
    from ..loader.builder import build_dataset, build_pipeline

    if not calib_list or not os.path.isfile(calib_list):
        raise QuantizeError(f"calibration list '{calib_list}' not found; pass a list of 'relative/path label' "
                            "lines with --calib_list (e.g. your val list)")
    test_cfg = dict(cfg.DATASET.get("test") or {})
    if "format" not in test_cfg:
        test_cfg["format"] = "VideoDataset"
    test_cfg["file_path"] = calib_list
    if data_prefix is not None:
        test_cfg["data_prefix"] = data_prefix
    pipeline = build_pipeline(cfg.PIPELINE.test, section="PIPELINE.test")
    return build_dataset(test_cfg, pipeline, "test")


class CalibrationClips:
    """Iterable of ``[1, 3, V*T, H, W]`` float32 clips for ``nncf.Dataset``: the first ``num_clips`` readable
    clips of ``dataset`` in list order. The first pass shows a progress bar and records the skipped clips;
    later passes (NNCF may iterate more than once) reuse the clips found readable."""

    def __init__(self, dataset, num_clips):
        self.dataset = dataset
        self.num_clips = int(num_clips)
        self.used, self.skipped = None, []

    def first_readable(self):
        """Index of the first readable clip (its shape checks the model input); QuantizeError if none is."""
        for index in range(len(self.dataset)):
            item = self.dataset[index]
            if item is not None:
                return index, item[0]
        raise QuantizeError(f"no clip listed in '{self.dataset.file_path}' could be read ({len(self.dataset)} "
                            "listed); check the paths and DATASET.test.data_prefix (or --data_prefix)")

    def __iter__(self):
        if self.used is not None:
            for index in self.used:
                item = self.dataset[index]
                if item is not None:
                    yield item[0][None]
            return
        from tqdm import tqdm

        used, skipped = [], []
        bar = tqdm(total=min(self.num_clips, len(self.dataset)), desc="calibration", unit="clip", file=sys.stderr,
                   dynamic_ncols=True)
        try:
            for index in range(len(self.dataset)):
                if len(used) == self.num_clips:
                    break
                item = self.dataset[index]
                if item is None:  # the dataset logged why; named again in the summary
                    skipped.append(self.dataset.info[index]["filename"])
                    continue
                used.append(index)
                bar.update(1)
                yield item[0][None]
        finally:  # NNCF stops reading after subset_size clips: record what the pass used either way
            bar.close()
            self.used, self.skipped = used, skipped


def head_matmuls(ov_model):
    """Names of the MatMul ops the classifier head makes: the last MatMul on every path to the output."""
    found, seen, stack = [], set(), [out.get_node() for out in ov_model.outputs]
    while stack:
        node = stack.pop()
        if node.get_friendly_name() in seen:
            continue
        seen.add(node.get_friendly_name())
        if node.get_type_name() == "MatMul":
            found.append(node.get_friendly_name())
            continue  # stop at the first MatMul on this path
        stack.extend(value.get_node() for value in node.input_values())
    return sorted(found)


def check_input_shape(ov_model, clip, model_file):
    """The model's input must take the pipeline's clips ``[1, 3, V*T, H, W]``; else one line naming both."""
    shape = ov_model.inputs[0].get_partial_shape()
    expected = [1] + list(clip.shape)
    if shape.rank.get_length() != len(expected) or any(
            dim.is_static and dim.get_length() != size for dim, size in zip(shape, expected)):
        raise QuantizeError(f"model '{model_file}' takes {shape} but the config's test pipeline makes clips "
                            f"{expected}; pass the config the model was exported with")


def quantize_model(cfg, model_file, calib_list, num_clips=DEFAULT_NUM_CLIPS, data_prefix=None, params_file=None,
                   output=None, inputs=()):
    """Quantize ``model_file`` (``.pdmodel`` / ``.json`` / ``.onnx`` / ``.xml``) to int8 with NNCF, calibrated on
    up to ``num_clips`` clips of ``calib_list``, and save ``<stem>.int8.xml`` + ``.bin`` (or ``output``) with its
    provenance record (``<stem>.int8.provenance.json``: the digests of the model files quantized).

    Before any work: the model must be an fp32 model (an int8 one is refused, never quantized again) that matches
    its own provenance record and the config; the output folder is created and written to; no output may be one
    of the inputs (the model files, ``calib_list``, the caller's ``inputs`` such as the config).

    Returns:
        dict ``model`` (written ``.xml``), ``clips`` (calibration clips used), ``skipped`` (unreadable clip
        files), ``float_scope`` (op names kept in float on purpose).
    Raises:
        QuantizeError / PredictError / OutputError: bad list, no readable clip, unreadable, already quantized or
        stale model, wrong input shape, an output folder that cannot be written, an output that is an input.
    """
    logger = get_logger()
    if int(num_clips) < 1:
        raise QuantizeError(f"--num_clips must be >= 1, got {num_clips}")
    path = os.fspath(output or int8_model_path(model_file))
    check_file(model_file, "model file")
    if is_int8(model_file):
        raise QuantizeError(f"'{model_file}' is already an int8 model; quantize the fp32 model it was made from (the "
                            "exported .pdmodel, .json or .onnx), not the int8 one")
    source_files = companion_files(model_file, params_file)
    outputs = [path, path[: -len(".xml")] + ".bin", sidecar_path(path)]
    read = source_files + [sidecar_path(model_file)]  # the model, its weights and its provenance record
    refuse_overwriting_inputs([("--output", p) for p in outputs],
                              [("--model_file", p) for p in read] + [("--calib_list", calib_list), *inputs])
    prepare_output_dir(os.path.dirname(os.path.abspath(path)), "--output" if output else "the model's folder")
    source_record = check_model_files(model_file, cfg, params_file)
    dataset = calibration_dataset(cfg, calib_list, data_prefix)
    clips = CalibrationClips(dataset, num_clips)
    ov = import_openvino()
    ov_model = read_model(ov.Core(), model_file, params_file)
    _, first = clips.first_readable()
    check_input_shape(ov_model, first, model_file)
    quantized, float_scope = quantize_ov_model(ov_model, clips, num_clips)
    if clips.skipped:
        logger.warning("%d calibration clip(s) could not be read and were skipped: %s", len(clips.skipped),
                       ", ".join(clips.skipped[:20]) + (" ..." if len(clips.skipped) > 20 else ""))
    used = len(clips.used or [])
    if used < int(num_clips):
        logger.warning("calibrated on %d clip(s): the list has no more readable clips (asked for %d)", used,
                       int(num_clips))
    save_int8(ov, quantized, path, source_files, source_record,
              calibration={"list": os.fspath(calib_list), "clips": used})
    logger.info("int8 model written to %s (calibrated on %d clip(s), %d skipped)", path, used, len(clips.skipped))
    return {"model": path, "clips": used, "skipped": list(clips.skipped), "float_scope": float_scope}


def quantize_ov_model(ov_model, clips, num_clips):
    """NNCF's int8 post-training quantization of ``ov_model`` on the iterable ``clips`` (``[1, 3, V*T, H, W]``
    arrays, up to ``num_clips`` read) with the settings of the module docstring.
    Returns ``(quantized model, names of the ops kept in float on purpose)``."""
    try:
        import nncf
    except ImportError:
        raise QuantizeError("int8 quantization needs NNCF: pip install nncf") from None
    import logging

    nncf.set_log_level(logging.WARNING)  # its INFO lines go to stdout; the kept-float ops are logged below
    float_scope = head_matmuls(ov_model) if FLOAT_HEAD else []
    get_logger().info("kept in float (ignored scope): %s", ", ".join(float_scope) or "nothing")
    # NNCF draws its progress bars on stdout, which carries the tool's result lines.
    with contextlib.redirect_stdout(sys.stderr):
        quantized = nncf.quantize(ov_model, nncf.Dataset(clips), preset=nncf.QuantizationPreset.MIXED,
                                  model_type=nncf.ModelType.TRANSFORMER, subset_size=int(num_clips),
                                  ignored_scope=nncf.IgnoredScope(names=float_scope) if float_scope else None)
    return quantized, float_scope


def save_int8(ov, model, path, source_files, source_record=None, **extra):
    """Write the int8 ``model`` to ``path`` (``.xml`` + ``.bin``) with its provenance record, whole: all three are
    written into a hidden staging folder (``common/staging.py``), then moved in: the record first, the ``.xml``
    last (a reader never finds an ``.xml`` without its weights, and a set cut short while moving in does not match
    its record). ``source_files`` are the model files quantized (their digests go into the record, so a model
    re-exported later is told from this one); ``extra`` goes into the record too. Float weights stay fp32."""
    folder, xml_name = os.path.split(os.path.abspath(path))
    stem = xml_name[: -len(".xml")]
    record_name = os.path.basename(sidecar_path(path))
    try:
        with staged_files(folder, stem) as stage:
            ov.save_model(model, stage.path(xml_name), compress_to_fp16=False)
            staged = [stage.path(xml_name), stage.path(stem + ".bin")]
            input_shape = [d.get_length() if d.is_static else None for d in model.inputs[0].get_partial_shape()]
            record = derived_record(source_files, staged, "int8", source_record, input_shape=input_shape, **extra)
            write_record(stage.path(record_name), record)
            stage.commit(order=[record_name, stem + ".bin", xml_name])
    except OSError as err:
        what, advice = os_error_reason(err)
        raise OutputError(f"cannot write the int8 model '{path}' ({what}); {advice}; nothing was written") from err
    return path
