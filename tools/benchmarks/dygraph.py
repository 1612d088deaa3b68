"""The project's model in Paddle dygraph: ``model([x], mode='infer')`` or one optimizer step."""

from .common import Runner, inputs, load_cfg, work


class DygraphRunner(Runner):
    """``build_model`` + the config's optimizer, on the benchmark's clips ``[B, 3, V*T, H, W]``."""

    def __init__(self, spec):
        import paddle

        from paddlevideo.modeling.builder import build_model
        from paddlevideo.solver.optimizer import build_optimizer

        self.paddle = paddle
        cfg = load_cfg(spec)
        paddle.seed(0)
        self.model = build_model(cfg.MODEL)
        if spec.get("weights"):
            self.model.set_state_dict(paddle.load(spec["weights"]))
        imgs, labels = inputs(spec, cfg)
        self.x = paddle.to_tensor(imgs)
        self.y = paddle.to_tensor(labels)
        self.train = spec["mode"] == "train"
        if self.train:
            self.model.train()
            self.opt, _ = build_optimizer(cfg.OPTIMIZER, self.model, updates_per_epoch=1000,
                                          epochs=cfg.epochs)
        else:
            self.model.eval()

    def run(self):
        if self.train:
            out = self.model([self.x, self.y], mode="train")
            out["loss"].backward()
            self.opt.step()
            self.opt.clear_grad()
            return float(out["loss"])
        with self.paddle.no_grad():
            return self.model([self.x], mode="infer").numpy()

    def work(self):
        """What the backbone was given in one iteration, read by a hook on it during an untimed run."""
        seen = []
        handle = self.model.backbone.register_forward_pre_hook(lambda layer, args: seen.append(args[0].shape))
        try:
            if self.train:  # a forward is enough to see the input; no optimizer step outside the timed runs
                self.model([self.x, self.y], mode="train")
            else:
                self.run()
        finally:
            handle.remove()
        clips, _, frames, _, size = seen[0]
        return work(clips, frames, size, self.train)

    def output(self):
        return None if self.train else self.run()
