"""What a video's container header claims (frame size, frame count), read before any decoder sees the file.

A video from elsewhere can claim anything in its header: a frame of 100,000 x 100,000 pixels, or 10**9
frames. Decoders size their buffers and frame tables from those claims (decord reserves a table entry per
claimed frame and aborts the process with ``std::bad_alloc`` on 10**9), so the claims are checked first:
:func:`check_video_claims` refuses a file whose header exceeds :data:`MAX_SIDE`, :data:`MAX_PIXELS` or
:data:`MAX_FRAMES`, with one line, before any of decord, PyAV or OpenCV opens it.

AVI (RIFF: ``avih``, the video stream's ``strh`` / ``strf``, OpenDML ``dmlh``) and MP4 / MOV (ISO base media:
each video track's ``tkhd``, ``stsd`` sample entry and ``stsz``) are read here with a few small reads, nothing
decoded. Other containers (MKV, WebM, FLV, ...) are probed with PyAV at the smallest probe size (their headers
state no per-frame table to reserve; the probe reads the stream parameters and the first packet).
"""

import os
import struct

# 16384 px on a side (twice 8K UHD's width), 2**26 pixels a frame (8192 x 8192, 200 MB as RGB), 10**7 frames
# (92 hours at 30 fps): far beyond any clip a video classifier reads, far below what exhausts memory.
MAX_SIDE = 16384
MAX_PIXELS = 1 << 26
MAX_FRAMES = 10_000_000
_MAX_BOXES = 4096  # boxes / chunks visited in one header: a real file has a few dozen


class VideoHeaderError(Exception):
    """Raised by :func:`check_video_claims` with the complete one-line message (the caller picks its class)."""


def check_video_claims(path):
    """Raise :class:`VideoHeaderError` when ``path``'s header claims a frame size or count beyond the limits.

    Returns the claims read (``{'width', 'height', 'frames', 'format'}``; a value is None when not stated).
    A header that cannot be parsed is left to the decoders, which report their own errors.
    """
    claims = read_claims(path)
    width, height, frames = claims.get("width"), claims.get("height"), claims.get("frames")
    problem = None
    if width is not None and height is not None and (max(width, height) > MAX_SIDE or width * height > MAX_PIXELS):
        problem = f"frames of {width} x {height} pixels (the limit is {MAX_SIDE} on a side, {MAX_PIXELS} pixels)"
    elif frames is not None and frames > MAX_FRAMES:
        problem = f"{frames} frames (the limit is {MAX_FRAMES})"
    if problem:
        raise VideoHeaderError(f"{path}: its {claims['format']} header claims {problem}; refusing to open it "
                               "before any memory is allocated for it (a corrupt or hostile file)")
    return claims


def read_claims(path):
    """The frame size and count ``path``'s container states, without decoding (see the module doc)."""
    with open(path, "rb") as f:
        head = f.read(12)
        f.seek(0, os.SEEK_END)
        size = f.tell()
        try:
            if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"AVI ":
                return _avi_claims(f, size)
            if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
                return _mp4_claims(f, size)
        except (struct.error, ValueError):
            return {"format": "unreadable"}
    return _probe_claims(path)


def _header_at(f, pos, layout, budget, what):
    """The 8-byte chunk or box header at ``pos``, unpacked with ``layout``. Counts it against ``budget``: a
    file that claims more than ``_MAX_BOXES`` in all is refused (a crafted file could otherwise nest or repeat
    them without end)."""
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError(f"too many {what}")
    f.seek(pos)
    return struct.unpack(layout, f.read(8))


# ---------------------------------------------------------------- AVI

def _riff_chunks(f, start, end, budget):
    pos = start
    while pos + 8 <= end:
        tag, size = _header_at(f, pos, "<4sI", budget, "chunks")
        if tag == b"LIST":
            yield tag + f.read(4), pos + 12, min(pos + 8 + size, end)
        else:
            yield tag, pos + 8, min(pos + 8 + size, end)
        pos += 8 + size + (size & 1)


def _avi_claims(f, size):
    claims = {"format": "AVI", "width": None, "height": None, "frames": None}
    budget = [_MAX_BOXES]
    counts, sizes = [], []
    for tag, start, end in _riff_chunks(f, 12, size, budget):
        if tag != b"LISThdrl":
            continue
        for inner, istart, iend in _riff_chunks(f, start, end, budget):
            f.seek(istart)
            if inner == b"avih" and iend - istart >= 40:
                fields = struct.unpack("<10I", f.read(40))
                counts.append(fields[4])
                sizes.append((fields[8], fields[9]))
            elif inner == b"LISTstrl":
                stream = {}
                for leaf, lstart, lend in _riff_chunks(f, istart, iend, budget):
                    f.seek(lstart)
                    stream[leaf] = f.read(min(lend - lstart, 64))
                strh, strf = stream.get(b"strh", b""), stream.get(b"strf", b"")
                if strh[:4] == b"vids" and len(strh) >= 36:
                    counts.append(struct.unpack_from("<I", strh, 32)[0])
                    if len(strf) >= 12:
                        width, height = struct.unpack_from("<ii", strf, 4)
                        sizes.append((abs(width), abs(height)))
            elif inner == b"LISTodml":
                for leaf, lstart, lend in _riff_chunks(f, istart, iend, budget):
                    if leaf == b"dmlh" and lend - lstart >= 4:
                        f.seek(lstart)
                        counts.append(struct.unpack("<I", f.read(4))[0])
        break
    if counts:
        claims["frames"] = max(counts)
    if sizes:
        claims["width"], claims["height"] = max(sizes, key=lambda s: s[0] * s[1])
    return claims


# ---------------------------------------------------------------- MP4 / MOV

def _boxes(f, start, end, budget):
    pos = start
    while pos + 8 <= end:
        size, kind = _header_at(f, pos, ">I4s", budget, "boxes")
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", f.read(8))[0], 16
        elif size == 0:
            size = end - pos
        if size < header:
            return
        yield kind, pos + header, min(pos + size, end)
        pos += size


def _find(f, start, end, path, budget):
    """Payload ranges of the boxes at ``path`` (e.g. ``[b"mdia", b"minf"]``) under ``start..end``."""
    ranges = [(start, end)]
    for kind in path:
        ranges = [(s, e) for a, b in ranges for k, s, e in _boxes(f, a, b, budget) if k == kind]
    return ranges


def _mp4_claims(f, size):
    claims = {"format": "MP4", "width": None, "height": None, "frames": None}
    budget = [_MAX_BOXES]
    counts, sizes = [], []
    for trak_start, trak_end in _find(f, 0, size, [b"moov", b"trak"], budget):
        handlers = _find(f, trak_start, trak_end, [b"mdia", b"hdlr"], budget)
        if not handlers:
            continue
        f.seek(handlers[0][0] + 8)  # version/flags, pre_defined
        if f.read(4) != b"vide":
            continue
        for start, end in _find(f, trak_start, trak_end, [b"tkhd"], budget):
            if end - start >= 8:
                f.seek(end - 8)  # the last two fields: width, height as 16.16 fixed point
                width, height = struct.unpack(">II", f.read(8))
                sizes.append((width >> 16, height >> 16))
        stbl = _find(f, trak_start, trak_end, [b"mdia", b"minf", b"stbl"], budget)
        for start, end in stbl:
            for kind, bstart, bend in _boxes(f, start, end, budget):
                f.seek(bstart)
                if kind == b"stsd" and bend - bstart >= 8 + 36:
                    f.seek(bstart + 8 + 32)  # first sample entry: 8 header + 24 reserved/defined bytes
                    sizes.append(struct.unpack(">HH", f.read(4)))
                elif kind == b"stsz" and bend - bstart >= 12:
                    counts.append(struct.unpack(">III", f.read(12))[2])
    if counts:
        claims["frames"] = max(counts)
    if sizes:
        claims["width"], claims["height"] = max(sizes, key=lambda s: s[0] * s[1])
    return claims


# ---------------------------------------------------------------- other containers

def _probe_claims(path):
    claims = {"format": "container", "width": None, "height": None, "frames": None}
    try:
        import av

        with av.open(path, options={"probesize": "32"}) as container:
            streams = container.streams.video
            if not streams:
                return claims
            stream = streams[0]
            claims["format"] = container.format.name.split(",")[0].upper()
            claims["width"], claims["height"] = stream.codec_context.width, stream.codec_context.height
            frames = int(stream.frames or 0)
            rate = stream.average_rate or stream.guessed_rate
            if not frames and stream.duration and stream.time_base and rate:
                frames = int(stream.duration * stream.time_base * rate)
            claims["frames"] = frames or None
    except Exception:  # not a video PyAV can open: the decoder will say so in its own words
        pass
    return claims
