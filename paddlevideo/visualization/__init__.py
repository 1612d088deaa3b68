"""See what a model does: attention maps, training curves, a test report and annotated videos.

One job per module; import the one you need (importing this package imports nothing heavy, and
matplotlib, Pillow and VisualDL are imported only by the functions that draw or log):

- :mod:`.rollout`: attention rollout for divided, joint and space-only attention (numpy only).
- :mod:`.attention`: read every block's attention probabilities out of a model (the adapter).
- :mod:`.heatmap`: the attention figures: frame grid, animated GIF, temporal-share plot, raw-map JSON.
- :mod:`.records`: the training records (JSON lines, optional VisualDL scalars, training_curves.png).
- :mod:`.curves`: draw training_curves.png from records.
- :mod:`.report`: the test report (per-class accuracy, confusion matrix, most-confused pairs, skipped clips).
- :mod:`.annotate`: write a video with the top-k labels and scores drawn on its frames.
"""
