"""The test loop behind ``main.py --test``: multi-view scores, CenterCropMetric, skipped-file report, and the
test report (per-class accuracy, confusion matrix, most confused pairs, skipped clips)."""

import os

import paddle
from tqdm import tqdm

from ..metrics import build_metric
from ..metrics.center_crop import MetricError
from ..config import require
from ..common import dist
from ..common.logger import get_logger
from .loaders import build_loader, clip_name
from .run_files import output_dir_of

SHOW_NAMES = 20  # skipped clips named in the report


@paddle.no_grad()
def test_model(cfg, weights, save_scores=False, scores_path=None, report_dir=None, model=None, trust_pickle=False):
    """Evaluate ``weights`` on ``DATASET.test`` with the test pipeline (e.g. 3 crops per clip).

    Each process scores its shard; the metric gathers scores from all processes and de-duplicates
    them by clip index. Clips that failed to decode are never replaced: they are counted and named
    (the count is always reported, 0 included).

    Args:
        cfg: the full config.
        weights: a ``.pdparams`` full checkpoint.
        save_scores: write ``indices``, ``labels``, ``scores [N, num_classes]`` to ``scores_path``
            (default ``<output_dir>/test_scores.npz``) on rank 0.
        report_dir: write the test report there (rank 0; :func:`write_report`); None writes none.
        model: score with this callable instead of building the model from ``weights``, e.g. an exported
            model (``deploy.predictor.ExportedModel``); called as ``model(batch, mode='test')``.
    Returns:
        the metric's result dict (``top1``, ``top5``, ``num_clips``, ``num_failed``, ...).
    Raises:
        MetricError: no clip could be scored, or the scores cannot be right (labels outside the model's
            classes, NaN scores); the message names the clips.
    """
    from ..modeling.builder import build_model_with_weights

    require(cfg, ("MODEL", "DATASET.test", "PIPELINE.test"), "--test")
    logger = get_logger()
    dist.init_distributed()
    rank = dist.get_rank()
    class_names = None
    if report_dir and rank == 0:  # before any work: the report's folder and its class names
        _check_report_dir(report_dir, weights, model)
        class_names = _class_names(cfg)
    model = model if model is not None else build_model_with_weights(cfg.MODEL, weights, trust_pickle=trust_pickle)
    loader, dataset = build_loader(cfg, "test")
    log_interval = int(cfg.log_interval)
    metric = build_metric(cfg.get("METRIC") or {"name": "CenterCropMetric"}, data_size=len(dataset),
                          batch_size=cfg.DATASET.test_batch_size, log_interval=log_interval)
    bar = tqdm(loader, desc="test", unit="batch", disable=rank != 0, dynamic_ncols=True)
    for batch_id, data in enumerate(bar):
        if int(data[0].shape[0]) == 0:  # every clip of this batch failed to decode
            continue
        scores = model(data, mode="test")
        metric.update(batch_id, data, scores)
    try:
        result = metric.accumulate()
    except MetricError as err:
        names = _names(dataset, err.indices)
        raise MetricError(f"--test: {err}" + (f": {names}" if names else ""), err.indices) from None
    if result["num_failed"]:
        logger.warning("%d test clip(s) could not be read and were skipped: %s", result["num_failed"],
                       _names(dataset, result["failed_indices"]))
    logger.info("[TEST] finished: %d clips scored, %d skipped (broken/unreadable) top1: %.4f top5: %.4f",
                result["num_clips"], result["num_failed"], result["top1"], result["top5"])
    if save_scores and rank == 0:
        path = scores_path or os.path.join(output_dir_of(cfg), "test_scores.npz")
        metric.save_scores(path)
        logger.info("test scores written to %s", path)
    if report_dir and rank == 0:
        write_report(report_dir, result, cfg, [clip_name(dataset, i) for i in result["failed_indices"]], class_names)
    return result


_NOT_READ = object()  # write_report's class_names when the caller has not read the label list


def write_report(folder, result, cfg, skipped, class_names=_NOT_READ):
    """The test report (:mod:`paddlevideo.visualization.report`) of a metric ``result`` in ``folder``, with
    ``class_names`` (``{id: name}`` or None for ids; default: read from the label list the config names, as
    tools/predict.py finds it).

    A report that cannot be written (read-only folder, full disk) is one warning line: the metrics above
    are right and already printed, so the test itself does not fail. Returns the folder, or None then.
    """
    from ..common.files import os_error_reason
    from ..common.errors import OutputError
    from ..visualization.report import write_test_report

    logger = get_logger()
    try:
        write_test_report(folder, result["labels"], result["scores"],
                          _class_names(cfg) if class_names is _NOT_READ else class_names, skipped)
    except OutputError as err:
        logger.warning("test report not written: %s", err)
        return None
    except OSError as err:
        logger.warning("test report not written to %s (%s); pass --output_dir with a writable folder",
                       folder, os_error_reason(err)[0])
        return None
    logger.info("test report (per-class accuracy, confusion matrix, most confused pairs, skipped clips) in %s",
                folder)
    return folder


def _check_report_dir(folder, weights, model):
    """The report replaces ``folder`` whole: it must hold only an earlier report's files and no input."""
    from ..common.overwrite import refuse_overwriting_inputs
    from ..common.staging import check_replaceable
    from ..visualization.report import REPORT_FILES

    check_replaceable(folder, REPORT_FILES, "test report")
    exported = getattr(getattr(model, "predictor", None), "model_file", None)
    refuse_overwriting_inputs([("test report", folder)], [("-w", weights), ("--model_file", exported)],
                              replaces_folder=True)


def _class_names(cfg):
    """``{id: name}`` from the config's label list, or None (ids) when it names none or it cannot be read."""
    from ..loader.labels import read_label_names

    return read_label_names(cfg, instead="the test report shows class ids")


def _names(dataset, indices):
    """The first file names of ``indices`` (``..., and N more``); empty for no indices."""
    names = ", ".join(clip_name(dataset, i) for i in indices[:SHOW_NAMES])
    return names + (f" and {len(indices) - SHOW_NAMES} more" if len(indices) > SHOW_NAMES else "")
