"""``<stem>.timeline.png``: the classes over time at a glance.

Top: a ribbon, one bar per window (centred on the window, one stride wide, so the bars tile the time
axis), coloured by its top-1 class, more opaque the higher its score; the segments' class names are written
on it where there is room; with ``truth`` a second ribbon above it holds the true segments. Bottom: the
top-1 score of every window (and, with smoothing, the window's own unsmoothed score, thin grey). Detected hard
cuts (``timeline.cuts``) are dashed vertical lines through both, so a boundary that snapped to a cut shows it. The PNG
carries the bars it drew in a text chunk (:data:`PNG_DATA_KEY`, :func:`read_timeline_png`), so a test or a
script can check the picture against the CSV.
"""

import json

import numpy as np

PNG_DATA_KEY = "paddlevideo:timeline"
MAX_LEGEND = 12
CUT_COLOUR = "firebrick"


def _palette():
    import matplotlib

    strong = matplotlib.colormaps["tab10"].colors
    light = matplotlib.colormaps["tab20"].colors[1::2]
    return list(strong) + list(light)


def _class_colours(ids):
    palette = _palette()
    return {cid: palette[i % len(palette)] for i, cid in enumerate(sorted(ids))}


def _label(class_id, name):
    return str(name) if name not in (None, "") else str(class_id)


def draw_timeline(timeline, path, truth=None):
    """Draw ``timeline`` (:class:`~.scoring.Timeline`) into ``path`` (PNG); returns the drawn data
    ``{"bars": [[start_s, end_s, class_id, score], ...], "truth": [[start_s, end_s, class_id], ...],
    "cuts": [time_s, ...]}`` (seconds)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    windows = timeline.windows
    truth = list(truth or [])
    stride = timeline.settings.stride_s if timeline.settings and timeline.settings.stride_s else None
    centres = np.array([(w["start_s"] + w["end_s"]) / 2.0 for w in windows])
    if stride is None and len(centres) > 1:
        stride = float(np.median(np.diff(centres)))
    begin = min([w["start_s"] for w in windows] + [s["start_s"] for s in truth] or [0.0])
    end = max([w["end_s"] for w in windows] + [s["end_s"] for s in truth] or [1.0])
    names = {w["class_id"]: w.get("class_name") for w in windows}
    names.update({s["class_id"]: s.get("class_name") for s in truth if s["class_id"] not in names})
    colours = _class_colours(names)

    rows = 2 if truth else 1
    fig = Figure(figsize=(12, 2.4 + 0.6 * rows), dpi=110)
    grid = fig.add_gridspec(2, 1, height_ratios=[0.9 * rows, 1.3], hspace=0.08)
    ribbon, curve = fig.add_subplot(grid[0]), fig.add_subplot(grid[1])
    drawn = {"bars": [], "truth": [], "cuts": []}

    for i, w in enumerate(windows):
        half = (stride if stride else w["end_s"] - w["start_s"]) / 2.0
        left = max(begin, centres[i] - half) if i else w["start_s"]
        right = min(end, centres[i] + half) if i < len(windows) - 1 else w["end_s"]
        alpha = 0.2 + 0.8 * float(np.clip(w["score"], 0.0, 1.0))
        ribbon.barh(0.5, right - left, left=left, height=0.9, color=colours[w["class_id"]], alpha=alpha,
                    linewidth=0)
        drawn["bars"].append([float(left), float(right), int(w["class_id"]), float(w["score"])])
    for segment in timeline.segments:
        width = segment["end_s"] - segment["start_s"]
        if width >= 0.04 * (end - begin):
            ribbon.text(segment["start_s"] + width / 2.0, 0.5, _label(segment["class_id"], segment["class_name"]),
                        ha="center", va="center", fontsize=7, clip_on=True)
    for segment in truth:
        width = segment["end_s"] - segment["start_s"]
        ribbon.barh(1.5, width, left=segment["start_s"], height=0.9, color=colours[segment["class_id"]],
                    linewidth=0)
        drawn["truth"].append([float(segment["start_s"]), float(segment["end_s"]), int(segment["class_id"])])
        if width >= 0.04 * (end - begin):
            ribbon.text(segment["start_s"] + width / 2.0, 1.5,
                        _label(segment["class_id"], segment.get("class_name")), ha="center", va="center",
                        fontsize=7, clip_on=True)
    ribbon.set_ylim(0, rows)
    ribbon.set_yticks([0.5, 1.5][:rows], ["predicted", "true"][:rows], fontsize=8)
    ribbon.set_xlim(begin, end)
    ribbon.tick_params(axis="x", labelbottom=False)
    if not windows:
        ribbon.text((begin + end) / 2.0, 0.5, "no window scored", ha="center", va="center", color="0.4")

    for time_s in timeline.cuts or ():
        for axes in (ribbon, curve):
            axes.axvline(time_s, color=CUT_COLOUR, linestyle="--", linewidth=0.7)
        drawn["cuts"].append(float(time_s))
    if windows:
        curve.plot(centres, [w["score"] for w in windows], color="black", linewidth=1.0, label="top-1 score")
        smoothed = timeline.settings is not None and timeline.settings.smooth > 1
        if smoothed:
            curve.plot(centres, [w["raw_score"] for w in windows], color="0.6", linewidth=0.6,
                       label="unsmoothed top-1 score")
        if drawn["cuts"]:
            curve.plot([], [], color=CUT_COLOUR, linestyle="--", linewidth=0.8, label="detected hard cut")
        curve.legend(fontsize=7, loc="lower left")
    curve.set_xlim(begin, end)
    curve.set_ylim(0, 1.02)
    curve.set_ylabel("score", fontsize=8)
    curve.set_xlabel("time (s)", fontsize=8)
    curve.grid(True, alpha=0.3)

    seconds = sorted(names, key=lambda cid: -sum(w["end_s"] - w["start_s"] for w in windows if w["class_id"] == cid))
    handles = [Patch(color=colours[cid], label=_label(cid, names[cid])) for cid in seconds[:MAX_LEGEND]]
    if len(seconds) > MAX_LEGEND:
        handles.append(Patch(color="white", label=f"+{len(seconds) - MAX_LEGEND} more"))
    if handles:
        ribbon.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.suptitle(_title(timeline), fontsize=9, color="firebrick" if timeline.error else "black")
    fig.subplots_adjust(left=0.07, right=0.86, top=0.86 if not timeline.error else 0.82, bottom=0.16)
    fig.savefig(path, format="png", metadata={PNG_DATA_KEY: json.dumps(drawn)})
    return drawn


def _title(timeline):
    import os

    name = os.path.basename(str(timeline.source).rstrip("/")) or str(timeline.source)
    parts = [f"{name}: {len(timeline.windows)} windows"]
    settings = timeline.settings
    if settings is not None and settings.window_s:
        parts.append(f"of {settings.window_s:.3g} s every {settings.stride_s:.3g} s")
        if settings.smooth > 1:
            parts.append(f"(scores averaged over {settings.smooth} windows)")
    if timeline.cuts:
        parts.append(f"- {len(timeline.cuts)} hard cut{'s' if len(timeline.cuts) > 1 else ''} detected")
    title = " ".join(parts)
    if timeline.error:
        title += "\nincomplete: " + timeline.error
    elif timeline.stopped:
        title += " (stopped early)"
    return title


def read_timeline_png(path):
    """The bars stored in a timeline PNG by :func:`draw_timeline`."""
    from PIL import Image

    with Image.open(path) as image:
        return json.loads(image.text[PNG_DATA_KEY])
