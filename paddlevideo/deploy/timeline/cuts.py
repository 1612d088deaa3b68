"""Hard cuts in a stream of frames: :class:`CutDetector`.

A hard cut (edited footage, clips concatenated one after another) is a frame that the frame before it does
not explain. A window that straddles a cut mixes two shots, so its score is evidence about neither: the
timeline leaves such windows out of its smoothing (:mod:`.scoring`).

Frames are reduced to small grey thumbnails (:func:`thumbnail`, about :data:`THUMB_SIDE` pixels on the short
side). The change into frame ``t`` is how much of it frame ``t - 1`` cannot explain (:func:`unexplained`):
each block (a grid of about :data:`BLOCK` x :data:`BLOCK` thumbnail pixels) of frame ``t`` is matched with
frame ``t - 1`` shifted by up to :data:`SEARCH` pixels (motion compensation: steady motion and camera pans cost
little), and the change is the mean over blocks of the best match's mean absolute grey difference (0-255).

The rule (:meth:`CutDetector.push`): frame ``t`` starts a new shot when

1. its change jumps above the typical change, the median ``m`` of the changes into the previous
   :data:`HISTORY` frames (detected cuts left out), by at least ``max(FLOOR, Z x sigma, (RATIO - 1) x m)``,
   ``sigma`` being the robust spread of those changes (1.4826 x their median absolute deviation): noise and
   steady motion change about as much from frame to frame, so they do not jump;
2. the same holds the other way round (what frame ``t`` cannot explain of frame ``t - 1``): a cut both brings
   in new content and takes the old away, while an object coming into view (or leaving it) does only one;
3. the changes into frames ``t - 1`` and ``t + 1`` stay below ``m`` + :data:`FALL_BACK` x the jump: a cut is
   one frame's jump, while a change that stays high (an object moving in, a pan that speeds up, a lighting
   ramp) is a new typical level.

Gradual transitions (fades, dissolves) are not hard cuts and are not detected; neither is a shot of a single
frame (its two cuts follow each other). The verdict on frame ``t`` waits for frame ``t + 1``. Memory stays
bounded: one thumbnail, :data:`HISTORY` numbers and the list of cut frames.
"""

import bisect
import collections
import functools
import statistics

import numpy as np

THUMB_SIDE = 32  # thumbnails are 32-63 pixels on the short side (smaller frames are used as they are)
BLOCK = 16  # block side in thumbnail pixels (2 x 3 blocks on a 16:9 picture): each moves on its own
SEARCH = 2  # motion compensation: shifts of up to this many thumbnail pixels (about 6 % of the short side)
HISTORY = 8  # frames whose changes make the typical change
MIN_HISTORY = 3  # fewer changes than this (the first frames of a stream): no judgement yet
RATIO = 1.2  # a cut's change is at least this many times the typical one ...
Z = 4.0  # ... and this many robust standard deviations above it ...
FLOOR = 1.0  # ... and this many grey levels (0-255) above it
FALL_BACK = 0.5  # the next change must come back below typical + FALL_BACK x the jump


def thumbnail(frame, side=THUMB_SIDE):
    """A small grey image of ``frame`` (uint8 RGB ``[H, W, 3]``, or already grey ``[H, W]``): float32
    ``[H // f, W // f]`` with ``f = max(1, min(H, W) // side)`` (the frame itself, in grey, when it is small),
    grey levels 0-255 (ITU-R BT.601 luma, rounded).

    Each thumbnail pixel averages a 2 x 2 grid of pixels sampled from its ``f x f`` square (averaging suppresses
    pixel noise; sampling keeps the cost a few thousand pixels at any resolution, where averaging whole squares
    would cost milliseconds on HD frames; a cut changes the whole picture, fine texture does not matter)."""
    import cv2

    factor = max(1, min(frame.shape[0], frame.shape[1]) // side)
    width, height = frame.shape[1] // factor, frame.shape[0] // factor
    if factor > 1:  # OpenCV reads padded rows (a decoder's luma plane) in place
        frame = cv2.resize(frame, (2 * width, 2 * height), interpolation=cv2.INTER_NEAREST)
    frame = np.ascontiguousarray(frame)
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
    if factor > 1:
        grey = cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA)
    return grey.astype(np.float32)


def unexplained(reference, image, block=BLOCK, search=SEARCH):
    """How much of ``image`` ``[h, w]`` the ``reference`` ``[h, w]`` cannot explain by small motion: ``image`` is
    cut into a grid of blocks about ``block`` pixels on a side, each block is matched with ``reference`` shifted
    by up to ``search`` pixels each way (edges repeated), and the result is the mean over blocks of the best
    match's mean absolute difference. A float, grey levels 0-255."""
    import cv2

    height, width = image.shape
    rows, cols, area = _block_sums(height, width, block)
    padded = cv2.copyMakeBorder(reference, search, search, search, search, cv2.BORDER_REPLICATE)
    span = 2 * search + 1
    stride_y, stride_x = padded.strides
    shifted = np.lib.stride_tricks.as_strided(padded, (span, span, height, width),
                                              (stride_y, stride_x, stride_y, stride_x))  # every shift, a view
    diff = np.abs(image - shifted).reshape(span * span, height, width)
    per_block = rows @ diff @ cols  # [shifts, block rows, block columns]: sums of absolute differences
    best = per_block.min(axis=0)  # each block's best match
    return float(best.sum()) / (best.size * area)  # mean over blocks of the mean absolute difference


@functools.lru_cache(maxsize=8)
def _block_sums(height, width, block):
    """``(rows [r, h], cols [w, c], area)``: 0/1 float32 matrices with ``rows @ image @ cols`` the sums over an
    ``r x c`` grid of blocks of about ``block`` pixels covering an ``[h, w]`` image (a few last pixels left out
    when the sizes do not divide), and the pixels per block. Summing by matrix product is several times faster
    than reshaping into blocks for these small images."""
    count_y, count_x = max(1, height // block), max(1, width // block)
    tall, wide = height // count_y, width // count_x
    rows = (np.arange(height)[None, :] // tall == np.arange(count_y)[:, None]).astype(np.float32)
    cols = (np.arange(width)[:, None] // wide == np.arange(count_x)[None, :]).astype(np.float32)
    return rows, cols, float(tall * wide)


class CutDetector:
    """Hard cuts of a stream of frames fed in order (see the module docstring for the rule).

    ``push(index, frame)`` for every frame; ``finish()`` at the end. Attributes: ``cuts`` (frame indices that
    start a new shot, ascending), ``decided`` (every cut at a frame ``<= decided`` is in ``cuts``; a frame's
    verdict waits for the frame after it), ``changes_seen`` (frames compared)."""

    def __init__(self):
        self.cuts = []
        self.decided = -1
        self.changes_seen = 0
        self._last = -1  # the last frame pushed
        self._previous = None  # thumbnail of the last frame
        self._history = collections.deque(maxlen=HISTORY)  # recent changes, cuts left out
        self._candidate = None  # (index, change, typical): a jump waiting for the next frame's change
        self._last_change = None  # the change into the last frame

    def push(self, index, frame):
        """Feed frame ``index`` (uint8 RGB ``[H, W, 3]`` or grey ``[H, W]``, the same kind for every frame);
        frames must come in order, every one of them."""
        current = thumbnail(frame)
        previous, self._previous, self._last = self._previous, current, index
        if previous is None or previous.shape != current.shape:  # the first frame, or the size changed
            self._settle(None)
            self._last_change = None
            self.decided = index
            return
        change = unexplained(previous, current)
        self.changes_seen += 1
        self._settle(change)
        typical = self._jump(change, self._last_change)
        # the other way round (rule 2) only for a jump, which is rare: half the work on every other frame
        if typical is not None and self._jump(unexplained(current, previous), self._last_change) is None:
            typical = None
        self._last_change = change
        if typical is None:
            self._history.append(change)
            self.decided = index
        else:
            self._candidate = (index, change, typical)
            self.decided = index - 1

    def finish(self):
        """The end of the stream: a jump into the last frame has no next frame to contradict it, so it is a cut;
        every frame is decided."""
        self._settle(None)
        self.decided = self._last

    def _settle(self, next_change):
        """Decide the pending candidate with the change into the frame after it (None: no such frame)."""
        if self._candidate is None:
            return
        index, change, typical = self._candidate
        self._candidate = None
        if next_change is None or next_change <= typical + FALL_BACK * (change - typical):
            self.cuts.append(index)
        else:  # the change stayed high: a new typical level, not a cut
            self._history.append(change)
        self.decided = index

    def _jump(self, change, before):
        """The typical change (median of the history) if ``change`` jumps above it (rule 1) and the change
        ``before`` it did not (rule 3), else None."""
        if len(self._history) < MIN_HISTORY or before is None:
            return None
        typical = statistics.median(self._history)  # a handful of numbers: plain Python is faster than numpy
        sigma = 1.4826 * statistics.median(abs(value - typical) for value in self._history)
        jump = change - typical
        if jump >= max(FLOOR, Z * sigma, (RATIO - 1.0) * typical) and before <= typical + FALL_BACK * jump:
            return typical
        return None


def crosses_cut(cuts, first, last):
    """Whether a window whose sampled frames run from ``first`` to ``last`` (frame indices) holds frames from
    both sides of a cut in ``cuts`` (ascending frame indices that start a new shot): some cut ``c`` with
    ``first < c <= last``."""
    position = bisect.bisect_right(cuts, first)
    return position < len(cuts) and cuts[position] <= last
