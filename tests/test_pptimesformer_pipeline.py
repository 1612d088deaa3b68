"""The data keys PaddleVideo's TimeSformer-family configs use: ``suffix`` in list datasets, mean 0 / std 1
normalisation, linspace sampling in every mode whatever ``valid_mode`` says, and the PP config's clips."""

import numpy as np
import pytest

from conftest import REPO
from engine_helpers import make_data
from paddlevideo.loader.builder import build_pipeline
from paddlevideo.loader.dataset.video import VideoDataset
from paddlevideo.loader.list_files import ListFileError, read_list_file
from paddlevideo.loader.pipelines import Normalization, Sampler
from paddlevideo.config import get_config

PP_CONFIG = REPO / "configs" / "recognition" / "pptimesformer" / "pptimesformer_k400_videos.yaml"


def test_suffix_is_appended_to_every_listed_path(tmp_path):
    make_data(tmp_path, num_train=3, num_val=1)
    bare = tmp_path / "bare.list"
    bare.write_text("".join(f"{line.split()[0][:-4]} {line.split()[1]}\n"
                            for line in (tmp_path / "train.list").read_text().splitlines()))
    items = read_list_file(str(bare), str(tmp_path), ".avi")
    assert [i["filename"] for i in items] == [str(tmp_path / f"train/{n:06d}.avi") for n in range(3)]
    dataset = VideoDataset(str(bare), pipeline=lambda r: {"imgs": np.zeros((3, 1, 2, 2), np.float32)},
                           data_prefix=str(tmp_path), suffix=".avi")
    assert len(dataset) == 3 and dataset[0][0].shape == (3, 1, 2, 2)
    # without the suffix none of them exists: the list is refused, naming the first path
    with pytest.raises(ListFileError, match="none of the 3 videos"):
        VideoDataset(str(bare), pipeline=None, data_prefix=str(tmp_path))


def test_mean_0_std_1_scales_frames_to_unit_range():
    frames = np.random.default_rng(0).integers(0, 256, size=(2, 4, 4, 3), dtype=np.uint8)
    out = Normalization([0, 0, 0], [1, 1, 1], tensor_shape=[1, 1, 1, 3])({"imgs": frames})["imgs"]
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, (frames / 255.0).astype(np.float32))


@pytest.mark.parametrize("mode", ["train", "valid", "test"])
def test_linspace_sampling_ignores_valid_mode(mode):
    """With linspace_sample, the frames are spread over the window in every mode; valid_mode (segment sampling's
    switch) changes nothing, as in PaddleVideo (its UCF-101 config validates with valid_mode False)."""
    from paddlevideo.loader.pipelines.sample import Window

    window = Window(mode=mode, num_seg=8)
    picks = []
    for valid_mode in (False, True):
        np.random.seed(3)
        sampler = Sampler(num_seg=8, seg_len=1, valid_mode=valid_mode, linspace_sample=True)
        picks.append(sampler.indices(301, sampler.windows(301, 30.0, window)))
    np.testing.assert_array_equal(picks[0], picks[1])
    if mode == "test":
        assert picks[0].tolist() == [0, 36, 72, 109, 145, 182, 218, 255]  # the spec's 30 fps example


def test_pp_config_pipelines_on_a_real_clip(example_avi):
    cfg = get_config(str(PP_CONFIG), show=False)
    assert cfg.DATASET.test_batch_size == 1 and cfg.MODEL.runtime_cfg.test.avg_type == "prob"
    for mode, frames in (("train", 8), ("valid", 8), ("test", 24)):
        sample = cfg.PIPELINE[mode].sample
        assert sample.linspace_sample is True and sample.valid_mode is (mode != "train")
        clip = build_pipeline(cfg.PIPELINE[mode], mode)({"filename": str(example_avi)})["imgs"]
        assert clip.shape == (3, frames, 224, 224) and clip.dtype == np.float32
        assert 0.0 <= clip.min() and clip.max() <= 1.0  # mean 0, std 1: frames in [0, 1]


def test_16_frame_config_follows_num_seg_everywhere():
    """The 16-frame variant states num_seg once; the clips, test views and export follow it, and the window keeps
    the 32-frame sampling rate of PaddleVideo's 16-frame test."""
    cfg = get_config(str(PP_CONFIG).replace(".yaml", "_16f.yaml"), show=False)
    assert cfg.MODEL.backbone.num_seg == cfg.MODEL.runtime_cfg.test.num_seg == cfg.INFERENCE.num_seg == 16
    for mode in ("train", "valid", "test"):
        assert cfg.PIPELINE[mode].decode.num_seg == cfg.PIPELINE[mode].sample.num_seg == 16
        assert cfg.PIPELINE[mode].decode.sampling_rate == 32
    assert cfg.model_name == "ppTimeSformer_16f" and cfg.MODEL.backbone.name == "VisionTransformer_tweaks"
