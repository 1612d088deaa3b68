"""The base K400 config builds PaddleVideo's exact checkpoint surface and runs one CPU forward."""

import paddle

from paddlevideo.modeling import build_model
from paddlevideo.config import get_config
from conftest import K400_CONFIG


def test_base_state_dict_and_forward(shared_dir):
    expected = [line.split() for line in (shared_dir / "spec" / "timesformer_base_keys.txt").read_text().splitlines()
                if line.strip()]
    cfg = get_config(str(K400_CONFIG), ["MODEL.backbone.pretrained="], show=False)
    model = build_model(cfg.MODEL)
    got = [[key, "[" + ",".join(str(s) for s in value.shape) + "]", str(value.dtype).replace("paddle.", "")]
           for key, value in model.state_dict().items()]
    assert got == expected
    assert sum(int(v.numel()) for v in model.state_dict().values()) == 121_566_352

    model.eval()
    with paddle.no_grad():
        scores = model([paddle.randn([1, 3, 8, 224, 224])], "infer")
    assert scores.shape == [1, 400]
    assert bool(paddle.isfinite(scores).all())
