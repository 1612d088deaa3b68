"""``-w WEIGHTS``: where the model looks, for each answered clip (the attention rollout as pictures).

The exported model gives the answer; the dygraph model built from ``WEIGHTS`` (the same weights the export
was made from) reads its attention out (:mod:`paddlevideo.visualization`): the rollout of the test pipeline's
centre view, drawn as the frame grid PNG (frames above, overlays below) and the overlay GIF. At start-up
both models run one random clip and must give the same logits (fp32), so pictures of another model are
never shown next to this model's answer.
"""

import numpy as np

from ..common.errors import InputError
from ..common.logger import get_logger

HEADS = "mean"
VIEW = "centre"
CHECK_TOLERANCE = 1e-3  # relative to the largest logit; exported-vs-dygraph fp32 differences are ~1e-5


class AttentionExplainer:
    """The dygraph model of ``cfg`` with ``weights``; :meth:`load` and :meth:`explain` run in one thread."""

    def __init__(self, cfg, weights, pipeline, store):
        self.cfg, self.weights, self.pipeline, self.store = cfg, weights, pipeline, store
        self.model = None

    def load(self):
        from ..modeling.builder import build_model_with_weights

        self.model = build_model_with_weights(self.cfg.MODEL, self.weights)
        return self

    def logits(self, imgs):
        """Dygraph logits ``[N, C]`` of ``imgs [N, 3, V*T, H, W]`` (the exported model's input)."""
        import paddle

        with paddle.no_grad():
            return self.model([paddle.to_tensor(np.ascontiguousarray(imgs, np.float32))], mode="infer").numpy()

    def check_same_model(self, imgs, exported_logits, precision):
        """Raise :class:`InputError` when the weights do not compute the exported model's logits on ``imgs``
        (fp32 only: bf16 / int8 differ by design, then only a warning when the top-1 differs)."""
        mine = self.logits(imgs)
        exported = np.asarray(exported_logits, np.float64)
        if precision == "fp32":
            diff = float(np.abs(mine - exported).max())
            scale = max(1.0, float(np.abs(exported).max()))
            if diff > CHECK_TOLERANCE * scale:
                raise InputError(f"-w '{self.weights}' is not the model --model_file was exported from (logits differ "
                                 f"by {diff:.3g} on a test clip); pass the .pdparams the export was made from")
        elif (mine.argmax(-1) != exported.argmax(-1)).any():
            get_logger().warning("-w %s and the %s model disagree on the top-1 of a random test clip; the attention "
                                 "pictures show the float model", self.weights, precision)

    def explain(self, results, title):
        """The pictures for one decoded clip (the test pipeline's ``results``); returns ``{'token', 'files',
        'temporal_share', 'frame_indices'}`` (files by kind: ``grid``, ``gif``)."""
        from ..visualization.attention import explain_clip
        from ..visualization.heatmap import save_attention_gif, save_attention_grid
        from ..visualization.views import display_frames, select_view

        clip, frame_indices = select_view(results, self.model.num_seg, VIEW)
        _, rollout = explain_clip(self.model, clip, HEADS)
        frames = display_frames(clip, self.pipeline)
        token, folder = self.store.new()
        share = rollout.temporal_share[0]
        save_attention_grid(f"{folder}/attention_grid.png", frames, rollout.maps[0], share, frame_indices, title)
        save_attention_gif(f"{folder}/attention.gif", frames, rollout.maps[0])
        return {"token": token, "files": {"grid": "attention_grid.png", "gif": "attention.gif"},
                "temporal_share": [float(v) for v in share], "frame_indices": [int(i) for i in frame_indices]}
