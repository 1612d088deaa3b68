"""Resizing of learned embeddings when a model meets a new clip length or image size.

Both helpers take and return paddle Tensors and are used at run time (a clip with T != num_seg)
and when loading checkpoints (num_seg 8 -> 16, img_size 224 -> 448).
"""

import math

import paddle
import paddle.nn.functional as F


def time_indices(old_len, new_len):
    """Source frame of each target frame for nearest resizing: ``floor(t * old_len / new_len)``."""
    return [t * old_len // new_len for t in range(new_len)]


def resize_time_embed(time_embed, num_frames):
    """Nearest-neighbour resize of ``time_embed`` ``[1, T0, C]`` to ``[1, num_frames, C]``."""
    old_len = time_embed.shape[1]
    if old_len == num_frames:
        return time_embed
    index = paddle.to_tensor(time_indices(old_len, num_frames), dtype="int64")
    return paddle.index_select(time_embed, index, axis=1)


def grid_size(num_patches):
    """Side of the square patch grid holding ``num_patches`` patches; a non-square count is an error."""
    side = int(round(math.sqrt(num_patches)))
    if side * side != num_patches:
        raise ValueError(f"pos_embed holds {num_patches} patch positions, not a square grid")
    return side


def resize_pos_embed(pos_embed, num_patches):
    """Resize ``pos_embed`` ``[1, 1 + N0, C]`` to ``[1, 1 + num_patches, C]``.

    The CLS position is kept; the square grid of patch positions is resized bilinearly with
    corner-aligned sampling (``align_corners=True``), as image-ViT fine-tuning at a new size does.
    """
    if pos_embed.shape[1] == num_patches + 1:
        return pos_embed
    dim = pos_embed.shape[2]
    cls_pos, grid = paddle.split(pos_embed, [1, pos_embed.shape[1] - 1], axis=1)
    old_side, new_side = grid_size(grid.shape[1]), grid_size(num_patches)
    grid = grid.reshape([1, old_side, old_side, dim]).transpose([0, 3, 1, 2])
    grid = F.interpolate(grid, size=[new_side, new_side], mode="bilinear", align_corners=True)
    grid = grid.transpose([0, 2, 3, 1]).reshape([1, new_side * new_side, dim])
    return paddle.concat([cls_pos, grid], axis=1)
