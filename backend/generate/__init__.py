"""Generate: image -> segment -> geometry -> voxels -> visibility -> delight -> RelightableAsset.
Imports `core`, and `render` (delighting inverts the renderer: it is the forward model); never export, service or
evaluate."""
