"""Normalisation, JitterScale, crops and pipeline building, against independent numpy computations."""

import math

import numpy as np
import pytest

from paddlevideo.loader.builder import build_pipeline
from paddlevideo.loader.pipelines import (CenterCrop, Image2Array, JitterScale, Normalization, RandomCrop,
                                          RandomFlip, UniformCrop)


def source_coordinate(i, in_size, out_size):
    """Half-pixel source coordinate of output pixel ``i``, clamped at 0."""
    return max((i + 0.5) * in_size / out_size - 0.5, 0.0)


def numpy_bilinear(img, out_h, out_w):
    """Half-pixel bilinear resize of a 2-D array, one output pixel at a time (align_corners=False)."""
    in_h, in_w = img.shape
    out = np.zeros((out_h, out_w))
    for i in range(out_h):
        sy = source_coordinate(i, in_h, out_h)
        y0 = int(math.floor(sy))
        y1, wy = min(y0 + 1, in_h - 1), sy - y0
        for j in range(out_w):
            sx = source_coordinate(j, in_w, out_w)
            x0 = int(math.floor(sx))
            x1, wx = min(x0 + 1, in_w - 1), sx - x0
            top = img[y0, x0] * (1 - wx) + img[y0, x1] * wx
            bottom = img[y1, x0] * (1 - wx) + img[y1, x1] * wx
            out[i, j] = top * (1 - wy) + bottom * wy
    return out


def test_normalization_values():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(2, 5, 6, 3), dtype=np.uint8)
    frames[0, 0, 0], frames[1, 4, 5] = 0, 255
    out = Normalization([0.45, 0.45, 0.45], [0.225, 0.225, 0.225], [1, 1, 1, 3])({"imgs": frames})["imgs"]
    assert out.dtype == np.float32 and out.shape == frames.shape
    expected = ((frames.astype(np.float64) / 255.0 - np.float64(np.float32(0.45))) / np.float64(np.float32(0.225)))
    np.testing.assert_array_equal(out, expected.astype(np.float32))
    assert out[frames == 0].min() == pytest.approx(-2.0, abs=1e-6)
    assert out[frames == 255].max() == pytest.approx((1 - 0.45) / 0.225, abs=1e-6)


def test_image2array_layout():
    frames = np.arange(2 * 3 * 4 * 3, dtype=np.float32).reshape(2, 3, 4, 3)
    cthw = Image2Array("cthw")({"imgs": frames})["imgs"]
    assert cthw.shape == (3, 2, 3, 4) and cthw[1, 0, 2, 3] == frames[0, 2, 3, 1]
    tchw = Image2Array("tchw")({"imgs": frames})["imgs"]
    assert tchw.shape == (2, 3, 3, 4) and tchw[1, 2, 0, 1] == frames[1, 0, 1, 2]


def reference_jitter_size(h, w, s):
    if w < h:
        return int(math.floor(h / w * s)), s
    return s, int(math.floor(w / h * s))


@pytest.mark.parametrize("h,w,size", [(240, 320, 224), (320, 240, 224), (240, 320, 256), (100, 100, 130),
                                      (360, 480, 300), (17, 23, 11)])
def test_jitter_scale_sizes_and_values(h, w, size):
    assert reference_jitter_size(240, 320, 224) == (224, 298)
    rng = np.random.default_rng(1)
    imgs = rng.normal(size=(3, 2, h, w)).astype(np.float32)
    out = JitterScale(size, size)({"imgs": imgs})["imgs"]
    assert out.shape[-2:] == reference_jitter_size(h, w, size)
    assert out.dtype == np.float32
    # values against the exact float64 formula (two planes keep the loop cheap). Paddle's kernel (the
    # reference's) works in float32 coordinates, which moves a source coordinate by up to ~3e-5 px; times
    # neighbour differences of up to ~6 in N(0, 1) data that is < 3e-4. align_corners=True or antialiasing
    # would be off by > 1e-2.
    for c, t in [(2, 1)]:
        plane = imgs[c, t].astype(np.float64)
        np.testing.assert_allclose(out[c, t], numpy_bilinear(plane, *out.shape[-2:]), atol=3e-4)


def test_jitter_scale_unchanged_when_short_side_matches():
    imgs = np.random.default_rng(2).normal(size=(3, 2, 224, 300)).astype(np.float32)
    assert JitterScale(224, 224)({"imgs": imgs})["imgs"] is imgs


def test_jitter_scale_draws_rounded_sizes():
    np.random.seed(3)
    imgs = np.zeros((3, 1, 24, 32), np.float32)
    shorts = {JitterScale(20, 23)({"imgs": imgs})["imgs"].shape[-2] for _ in range(200)}
    assert shorts == {20, 21, 22, 23}


def coordinate_clip(h, w, t=2):
    """A [3, t, h, w] clip whose channel 0 holds the row, channel 1 the column, channel 2 the frame."""
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    clip = np.zeros((3, t, h, w), np.float32)
    clip[0], clip[1] = rows, cols
    clip[2] = np.arange(t)[:, None, None]
    return clip


@pytest.mark.parametrize("h,w", [(224, 298), (298, 224), (224, 224), (230, 301)])
def test_uniform_crop_offsets_and_order(h, w):
    size = 224
    out = UniformCrop(size)({"imgs": coordinate_clip(h, w)})["imgs"]
    assert out.shape == (3, 6, size, size)
    long_side = max(h, w)
    step = (long_side - size) // 2
    expected = [0, 2 * step, step]  # left/top, right/bottom, centre
    for view in range(3):
        top_left = out[:2, 2 * view, 0, 0]
        if h > w:
            assert tuple(top_left) == (expected[view], 0)
        else:
            assert tuple(top_left) == (0, expected[view])
        assert out[2, 2 * view:2 * view + 2, 0, 0].tolist() == [0, 1]  # frames stay in order inside a view


@pytest.mark.parametrize("h,w", [(256, 341), (341, 256), (256, 256), (226, 225)])
def test_random_crop_offsets(h, w):
    np.random.seed(4)
    size = 224
    seen_y, seen_x = set(), set()
    clip = coordinate_clip(h, w, t=1)
    for draw in range(600):
        out = RandomCrop(size)({"imgs": clip})["imgs"]
        assert out.shape == (3, 1, size, size)
        y, x = int(out[0, 0, 0, 0]), int(out[1, 0, 0, 0])
        seen_y.add(y)
        seen_x.add(x)
        if draw < 5:
            np.testing.assert_array_equal(out, clip[..., y:y + size, x:x + size])
    # offsets come from [0, side - size) (half-open); a side equal to size gives 0
    for seen, side in ((seen_y, h), (seen_x, w)):
        allowed = set(range(side - size)) if side > size else {0}
        assert seen <= allowed
        assert len(seen) >= 0.9 * len(allowed)


def test_center_crop_and_flip():
    clip = coordinate_clip(240, 320)
    out = CenterCrop(224)({"imgs": clip})["imgs"]
    assert (out[0, 0, 0, 0], out[1, 0, 0, 0]) == (8, 48)
    odd = CenterCrop(224)({"imgs": coordinate_clip(225, 229)})["imgs"]
    assert (odd[0, 0, 0, 0], odd[1, 0, 0, 0]) == (round(0.5), round(2.5))  # Python rounding: 0, 2
    np.random.seed(5)
    flips = []
    for _ in range(200):
        results = RandomFlip()({"imgs": clip})
        flips.append(results["flipped"])
        expected = clip[..., ::-1] if results["flipped"] else clip
        np.testing.assert_array_equal(results["imgs"], expected)
    assert 70 < sum(flips) < 130


def test_pipeline_errors_name_the_problem(tiny_cfg):
    cfg = tiny_cfg.PIPELINE.test
    bad = dict(cfg, transform=list(cfg.transform) + [{"NoSuchOp": None}])
    with pytest.raises(KeyError, match="NoSuchOp.*JitterScale"):
        build_pipeline(bad, "test")
    bad = dict(cfg, transform=[{"JitterScale": {"min_size": 2, "max_size": 3, "maxsize": 4}}])
    with pytest.raises(KeyError, match="JitterScale has no key 'maxsize'"):
        build_pipeline(bad, "test")
    bad = dict(cfg, decode=dict(cfg.decode, backend="ffmpeg"))
    with pytest.raises(ValueError, match="backend 'ffmpeg'"):
        build_pipeline(bad, "test")


def test_misordered_pipeline_fails_when_built_naming_the_operator(tiny_cfg):
    from paddlevideo.loader.pipelines import PipelineError

    cfg = tiny_cfg.PIPELINE.train
    crop_first = dict(cfg, transform=[cfg.transform[3], *cfg.transform[:3], *cfg.transform[4:]])
    with pytest.raises(PipelineError, match=r"PIPELINE.train.transform.0: RandomCrop needs results\['data_format'\], "
                                            r"which no earlier operator of this pipeline adds; put Image2Array before it"):
        build_pipeline(crop_first, "train")
    no_decoder = {k: v for k, v in cfg.items() if k != "decode"}
    with pytest.raises(PipelineError, match=r"PIPELINE.train.sample: Sampler needs results\['video_reader'\].*"
                                            r"put VideoDecoder before it"):
        build_pipeline(no_decoder, "train")
    multi_segment = dict(tiny_cfg.PIPELINE.test, decode=dict(tiny_cfg.PIPELINE.test.decode, num_clips=2),
                         sample=dict(tiny_cfg.PIPELINE.test.sample, linspace_sample=False))
    with pytest.raises(PipelineError, match="PIPELINE.test.sample: VideoDecoder.num_clips > 1 needs "
                                            "Sampler.linspace_sample"):
        build_pipeline(multi_segment, "test")


def test_every_operator_declares_and_documents_its_keys():
    from paddlevideo.loader.pipelines import Operator
    from paddlevideo.loader.registry import PIPELINES

    names = PIPELINES.names()
    assert {"VideoDecoder", "Sampler", "Normalization", "Image2Array", "JitterScale", "RandomCrop", "RandomFlip",
            "UniformCrop", "CenterCrop"} <= set(names)
    for name in names:
        cls = PIPELINES.get(name)
        assert issubclass(cls, Operator) and cls.requires, name
        for key in (*cls.requires, *cls.adds):
            assert f"``{key}``" in cls.__doc__, (name, key)


@pytest.mark.parametrize("mode", ["train", "test"])
def test_output_shape_matches_what_the_pipeline_makes(tmp_path, tiny_cfg, mode):
    from paddlevideo.loader.demo_data import write_avi

    frames = np.random.default_rng(0).integers(0, 256, size=(20, 40, 56, 3), dtype=np.uint8)
    write_avi(tmp_path / "v.avi", frames, fps=25)
    pipeline = build_pipeline(tiny_cfg.PIPELINE[mode], mode)
    made = pipeline({"filename": str(tmp_path / "v.avi")})["imgs"].shape
    # the tiny config: 4 frames, 32 px crops; the test pipeline's UniformCrop makes 3 views on the time axis
    assert pipeline.output_shape() == made == ((3, 4, 32, 32) if mode == "train" else (3, 12, 32, 32))
    no_crop = dict(tiny_cfg.PIPELINE[mode], transform=list(tiny_cfg.PIPELINE[mode].transform[:3]))
    assert build_pipeline(no_crop, mode).output_shape() == (3, 4, None, None)  # JitterScale: size follows the video
