"""training_curves.png from a run's records (:mod:`.records`): what a person looks at instead of the log.

Four panels: training loss, training top-1 / top-5, learning rate (each per logged step), and validation
loss and top-1 (per epoch). The PNG carries the numbers it plots, taken from the drawn lines, in a text
chunk (:data:`PNG_DATA_KEY`), so a test or a script can check the picture against the records.
"""

import json

import numpy as np

from .files import atomic_output

PNG_DATA_KEY = "paddlevideo:curves"
# (panel title, record kind, x key, [(record key, line label)])
PANELS = (
    ("training loss", "step", "step", [("loss", "loss")]),
    ("training accuracy", "step", "step", [("top1", "top-1"), ("top5", "top-5")]),
    ("learning rate", "step", "step", [("lr", "lr")]),
    ("validation", "epoch", "epoch", [("loss", "loss"), ("top1", "top-1")]),
)


def _series(records, kind, x_key, value_key, split):
    xs, ys = [], []
    for record in records:
        if record.get("kind") != kind or value_key not in record:
            continue
        if kind == "epoch" and record.get("split", "val") != split:
            continue
        value = record[value_key]
        xs.append(float(record[x_key]))
        ys.append(float("nan") if value is None else float(value))
    return np.asarray(xs), np.asarray(ys)


def plot_training_curves(records, path, title=None):
    """Draw ``records`` (dicts as :class:`~.records.TrainingRecorder` keeps them) into ``path`` (PNG).

    Returns ``{"<panel>/<line>": {"x": [...], "y": [...]}}``: the data of every drawn line, read back from
    the figure's artists (NaN where a value was not finite; matplotlib leaves a gap there). The same dict
    is stored in the PNG (:func:`read_curve_data`).
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 6.5), dpi=100)
    axes = fig.subplots(2, 2).reshape(-1)
    drawn = {}
    for axis, (panel, kind, x_key, lines) in zip(axes, PANELS):
        twin = None
        for position, (key, label) in enumerate(lines):
            x, y = _series(records, kind, x_key, key, "val")
            if not len(x):
                continue
            # validation loss and accuracy have different scales: accuracy on a second y axis
            target = axis
            if kind == "epoch" and key != "loss":
                twin = twin or axis.twinx()
                target = twin
            (line,) = target.plot(x, y, marker="o" if kind == "epoch" else None, markersize=4,
                                  linewidth=1.2, label=label, color=f"C{position}")
            drawn[f"{panel}/{label}"] = {"x": [float(v) for v in line.get_xdata()],
                                         "y": [float(v) for v in line.get_ydata()]}
        axis.set_title(panel, fontsize=10)
        axis.set_xlabel(x_key)
        axis.grid(True, alpha=0.3)
        handles = [h for a in (axis, twin) if a is not None for h in a.get_lines()]
        if handles:
            axis.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="best")
        else:
            axis.text(0.5, 0.5, "no records yet", ha="center", va="center", transform=axis.transAxes, color="0.5")
        if panel == "learning rate":
            axis.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        if twin is not None:
            twin.set_ylabel("top-1")
            axis.set_ylabel("loss")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", metadata={PNG_DATA_KEY: json.dumps(drawn)})
    return drawn


def read_curve_data(path):
    """The line data stored in a training_curves.png by :func:`plot_training_curves`."""
    from PIL import Image

    with Image.open(path) as image:
        return json.loads(image.text[PNG_DATA_KEY])
