"""Hugging Face transformers' TimesformerForVideoClassification (random weights, the same shape), PyTorch eager."""

from .common import Runner, inputs, load_cfg, work


class HFTorchRunner(Runner):
    """The same clips as every contender: at inference the ``V`` views of each clip go through the model as
    ``B*V`` clips and their logits are averaged, as the project's recognizer does."""

    requires = ("torch", "transformers")

    def __init__(self, spec):
        import torch
        from transformers import TimesformerConfig, TimesformerForVideoClassification

        cfg = load_cfg(spec)
        backbone = cfg.MODEL.backbone
        torch.set_num_threads(spec["threads"])
        torch.manual_seed(0)
        hf_cfg = TimesformerConfig(
            image_size=backbone.img_size, patch_size=backbone.patch_size, num_channels=backbone.in_channels,
            num_frames=backbone.num_seg, hidden_size=backbone.embed_dim, num_hidden_layers=backbone.depth,
            num_attention_heads=backbone.num_heads, intermediate_size=int(backbone.embed_dim * backbone.mlp_ratio),
            qkv_bias=backbone.get("qkv_bias", True), layer_norm_eps=backbone.get("epsilon", 1e-6),
            attention_type=backbone.attention_type, num_labels=cfg.MODEL.head.num_classes,
        )  # HF's default drop_path_rate is 0 (and its config rejects a float 0.0)
        self.torch = torch
        self.model = TimesformerForVideoClassification(hf_cfg)
        imgs, labels = inputs(spec, cfg)  # [B, 3, V*T, H, W]
        batch, channels, frames, height, width = imgs.shape
        self.views, num_frames = spec["views"], backbone.num_seg
        # HF takes [clips, T, C, H, W]: view v of clip b is frames v*T ... (v+1)*T - 1, as in the recognizer.
        clips = imgs.reshape(batch, channels, frames // num_frames, num_frames, height, width)
        self.x = torch.from_numpy(clips).permute(0, 2, 3, 1, 4, 5).reshape(-1, num_frames, channels, height, width)
        self.x = self.x.contiguous()
        self.y = torch.from_numpy(labels[:, 0])
        self.train = spec["mode"] == "train"
        if self.train:
            self.model.train()
            self.opt = torch.optim.SGD(self.model.parameters(), lr=0.005, momentum=0.9, nesterov=True,
                                       weight_decay=1e-4)
        else:
            self.model.eval()

    def run(self):
        if self.train:
            loss = self.model(pixel_values=self.x, labels=self.y).loss
            loss.backward()
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)
            return float(loss.detach())
        with self.torch.inference_mode():
            logits = self.model(pixel_values=self.x).logits
            return logits.reshape(-1, self.views, logits.shape[-1]).mean(dim=1).numpy()

    def work(self):
        """What HF's embedding was given in one iteration (``[clips, T, C, H, W]``), read by a hook during an
        untimed forward."""
        seen = []

        def record(module, args, kwargs):
            seen.append(tuple((args[0] if args else kwargs["pixel_values"]).shape))

        handle = self.model.timesformer.embeddings.register_forward_pre_hook(record, with_kwargs=True)
        try:
            with self.torch.no_grad():
                self.model(pixel_values=self.x)
        finally:
            handle.remove()
        clips, frames, _, _, size = seen[0]
        return work(clips, frames, size, self.train)

    def output(self):
        return None  # different (random) weights: not comparable
