"""``Sampler``: picks the frame indices of a clip and decodes only those frames."""

import numpy as np

from ..registry import PIPELINES


def linspace_indices(start, end, num_seg, frames_len):
    """``int64(clip(linspace(start, end, num_seg), 0, frames_len - 1))`` (truncation, not rounding)."""
    return np.clip(np.linspace(start, end, num_seg), 0, frames_len - 1).astype(np.int64)


def segment_indices(frames_len, num_seg, seg_len, valid_mode):
    """TSN-style sampling: ``num_seg`` equal segments, ``seg_len`` consecutive frames from each.

    Train draws a random offset inside each segment; ``valid_mode`` takes the segment centre. Videos shorter
    than ``num_seg * seg_len`` frames wrap around (index modulo ``frames_len``).
    """
    average = frames_len // num_seg
    indices = []
    for i in range(num_seg):
        if average >= seg_len:
            offset = (average - seg_len) // 2 if valid_mode else np.random.randint(0, average - seg_len + 1)
            first = i * average + offset
        elif frames_len >= num_seg:
            first = i  # too short for whole segments: one frame per segment, in order
        else:
            first = i * frames_len // num_seg
        indices.extend(first + j for j in range(seg_len))
    return np.asarray(indices, dtype=np.int64) % frames_len


@PIPELINES.register()
class Sampler:
    """Set ``results['imgs']`` to the uint8 RGB frames ``[num_seg * seg_len, H, W, 3]`` of the clip.

    With ``linspace_sample`` (TimeSformer) the ``num_seg`` indices are spread evenly over the window
    ``[start_idx, end_idx]`` that ``VideoDecoder`` chose (the whole video if it chose none); short videos repeat
    their last frame. Otherwise segment sampling (see ``segment_indices``). The reader is closed afterwards.

    Args:
        num_seg: frames (segments) per clip.
        seg_len: consecutive frames per segment (segment sampling only).
        valid_mode: deterministic segment centres instead of random offsets (segment sampling only).
        linspace_sample: evenly spaced indices over the decoder's window.
    """

    def __init__(self, num_seg=8, seg_len=1, valid_mode=False, linspace_sample=False):
        if num_seg < 1 or seg_len < 1:
            raise ValueError(f"Sampler: num_seg and seg_len must be >= 1, got {num_seg}, {seg_len}")
        self.num_seg = num_seg
        self.seg_len = seg_len
        self.valid_mode = valid_mode
        self.linspace_sample = linspace_sample

    def indices(self, results):
        """The frame indices this sampler reads for ``results`` (int64 ``[num_seg]`` or ``[num_seg * seg_len]``)."""
        frames_len = results["frames_len"]
        if "clip_windows" in results and not self.linspace_sample:
            raise ValueError("VideoDecoder.num_clips > 1 needs Sampler.linspace_sample: True (segment sampling "
                             "already covers the whole video)")
        if self.linspace_sample and "clip_windows" in results:  # multi-clip test: clip after clip
            return np.concatenate([linspace_indices(start, end, self.num_seg, frames_len)
                                   for start, end in results["clip_windows"]])
        if self.linspace_sample:
            start = results.get("start_idx", 0)
            end = results.get("end_idx", frames_len - 1)
            return linspace_indices(start, end, self.num_seg, frames_len)
        return segment_indices(frames_len, self.num_seg, self.seg_len, self.valid_mode)

    def __call__(self, results):
        if "video_reader" not in results:
            raise KeyError("Sampler needs a 'video_reader' from VideoDecoder: put VideoDecoder in 'decode'")
        reader = results.pop("video_reader")
        try:
            results["frame_idx"] = self.indices(results)
            results["imgs"] = reader.get_frames(results["frame_idx"])
        finally:
            reader.close()
        return results
