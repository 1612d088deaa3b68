"""VideoMix (the MIX section): mixup and a spatial cutmix of the training batch, the mixed loss and top-1 as
PaddleVideo reports them, and the training loader with a broken video in the list."""

import numpy as np
import paddle
import pytest

from engine_helpers import demo_cfg, make_data
from paddlevideo.loader.mix import VideoMix, build_mix, cutmix, cutmix_box, mixup
from paddlevideo.modeling.heads import ppTimeSformerHead
from paddlevideo.common.errors import ConfigError

K = 5


def _batch(n=4, t=4, h=24, w=32, seed=0):
    """Clips ``[n, 3, t, h, w]`` whose values are all distinct (so a pasted pixel is always visible)."""
    rng = np.random.default_rng(seed)
    imgs = rng.permutation(n * 3 * t * h * w).reshape(n, 3, t, h, w).astype(np.float32)
    return imgs, np.arange(n, dtype=np.int64).reshape(n, 1) % K


def _np_ce(scores, labels, eps):
    """Label-smoothed cross-entropy, mean over the batch (float64)."""
    scores = scores.astype(np.float64)
    logp = scores - scores.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    target = np.full_like(logp, eps / scores.shape[1])
    target[np.arange(len(labels)), labels.reshape(-1)] += 1 - eps
    return float(-(target * logp).sum(1).mean())


def test_mixup_images_and_loss_on_a_fixed_lambda():
    imgs, labels = _batch()
    perm = np.array([2, 0, 3, 1])
    mixed, a, b, lam = mixup(imgs, labels, 0.3, perm)
    np.testing.assert_allclose(mixed, 0.3 * imgs + 0.7 * imgs[perm], rtol=1e-6)
    assert (a == labels).all() and (b == labels[perm]).all() and lam.dtype == np.float32 and (lam == np.float32(0.3)).all()

    head = ppTimeSformerHead(num_classes=K, in_channels=8, ls_eps=0.1)
    scores = paddle.to_tensor(np.random.default_rng(1).standard_normal((4, K)).astype(np.float32))
    out = head.mix_loss(scores, paddle.to_tensor(a), paddle.to_tensor(b), paddle.to_tensor(lam))
    s = scores.numpy()
    want = 0.3 * _np_ce(s, a, 0.1) + 0.7 * _np_ce(s, b, 0.1)
    assert abs(float(out["loss"]) - want) < 1e-5
    assert abs(float(out["loss"]) - (0.3 * _np_ce(s, a, 0.0) + 0.7 * _np_ce(s, b, 0.0))) > 1e-3  # smoothing is on


def test_top1_is_weighted_by_lambda():
    head = ppTimeSformerHead(num_classes=K, in_channels=8)
    a, b = np.array([[0], [1], [2], [3]]), np.array([[1], [2], [3], [4]])
    scores = np.full((4, K), -5.0, np.float32)
    scores[np.arange(4), a[:, 0]] = 5.0  # right about every clip's a, wrong about its b
    out = head.mix_loss(paddle.to_tensor(scores), paddle.to_tensor(a), paddle.to_tensor(b),
                        paddle.to_tensor(np.full(4, 0.7, np.float32)))
    assert abs(float(out["top1"]) - 0.7) < 1e-6 and abs(float(out["top5"]) - 1.0) < 1e-6


def test_video_mix_with_cutmix_off_is_mixup_with_its_drawn_lambda():
    imgs, labels = _batch()
    np.random.seed(7)
    out = VideoMix(cutmix_prob=0.0, mixup_alpha=0.2)([imgs, labels])
    np.random.seed(7)  # the same draws, in VideoMix's order: permutation, cutmix-or-not, lambda
    perm = np.random.permutation(4)
    np.random.random()
    lam = np.random.beta(0.2, 0.2)
    np.testing.assert_allclose(out[0], lam * imgs + (1 - lam) * imgs[perm], rtol=1e-6)
    assert (out[2] == labels[perm]).all() and out[3][0] == np.float32(lam)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 6])  # seeds whose permutation moves some clip (5's does not)
def test_cutmix_box_is_spatial_the_same_in_every_frame_and_lambda_is_the_kept_area(seed):
    imgs, labels = _batch(t=4, h=24, w=32)  # T != H, W: a box cut on the wrong axes shows
    np.random.seed(seed)
    out = VideoMix(cutmix_prob=1.0, cutmix_alpha=1.0)([imgs, labels])
    np.random.seed(seed)
    perm = np.random.permutation(4)
    assert (out[2] == labels[perm]).all() and (perm != np.arange(4)).any()
    changed = out[0] != imgs  # [N, C, T, H, W]; every value is distinct, so a pasted pixel always differs
    moved = changed[[i for i in range(4) if perm[i] != i]]
    assert (moved == moved[:1, :1, :1]).all()  # one H x W mask for every clip, channel and frame
    mask = moved[0, 0, 0]
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if rows.size:  # the changed pixels form exactly one rectangle
        assert mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].all() and mask.sum() == rows.size * cols.size
    kept = 1.0 - mask.mean()
    assert abs(float(out[3][0]) - kept) < 1e-6
    assert (out[0][~changed] == imgs[~changed]).all()


def test_cutmix_box_clips_at_the_frame_edges():
    class At:  # a box centred at the given pixel
        def __init__(self, y, x):
            self.values = [y, x]

        def randint(self, _):
            return self.values.pop(0)

    assert cutmix_box(24, 32, 0.75, At(0, 31)) == (0, 6, 23, 32)  # side ratio 0.5: 12 x 16, clipped at two edges
    imgs, labels = _batch(n=2)
    out = cutmix(imgs, labels, (0, 6, 23, 32), np.array([1, 0]))
    assert abs(out[3][0] - (1 - 6 * 9 / (24 * 32))) < 1e-7


def test_mix_config_errors():
    assert build_mix(None) is None
    with pytest.raises(ConfigError, match="cutmix_prob"):
        build_mix({"name": "VideoMix", "cutmix_prob": 1.5})
    with pytest.raises(ConfigError, match=r"unknown batch mixer name 'Mixup'"):
        build_mix({"name": "Mixup"})


def test_training_loader_mixes_and_still_skips_a_broken_video(tmp_path):
    """MIX with the loader that replaces broken videos: the broken clip never reaches a batch, every batch is
    mixed ([imgs, labels_a, labels_b, lam]), and the epoch ends (no hang)."""
    from paddlevideo.tasks.loaders import build_loader

    data = make_data(tmp_path / "data", num_train=6, num_val=2)
    (tmp_path / "data" / "train" / "broken.avi").write_bytes(b"not a video")
    with open(tmp_path / "data" / "train.list", "a") as handle:
        handle.write("train/broken.avi 1\n")
    cfg = demo_cfg(tmp_path / "data", tmp_path / "out", "DATASET.batch_size=3", "DATASET.num_workers=0",
                   "MIX={name: VideoMix, cutmix_prob: 0.5, mixup_alpha: 0.2, cutmix_alpha: 1.0}")
    assert data["train"]
    loader, dataset = build_loader(cfg, "train")
    assert len(dataset) == 7
    np.random.seed(0)
    batches = list(loader)
    assert len(batches) == 2
    for imgs, a, b, lam in batches:
        assert list(imgs.shape) == [3, 3, 8, 32, 32] and list(a.shape) == [3, 1] and list(lam.shape) == [3]
        assert 0.0 <= float(lam[0]) <= 1.0 and sorted(a.numpy().ravel()) == sorted(b.numpy().ravel())


def test_a_failing_mix_ends_the_epoch_with_one_line(tmp_path):
    """A mix that raises (here: clips of another layout) is a loader failure: one LoaderError, never a hang."""
    from paddlevideo.loader.builder import build_dataloader
    from paddlevideo.loader.failures import LoaderError

    class Clips:
        def __len__(self):
            return 4

        def __getitem__(self, index):
            return np.zeros((3, 2, 4, 4), np.float32), np.array([0], np.int64)

    def broken_mix(batch):
        raise ValueError("no mixing today")

    loader = build_dataloader(Clips(), batch_size=2, mix=broken_mix)
    with pytest.raises(LoaderError, match="no mixing today"):
        list(loader)
