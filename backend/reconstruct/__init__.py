"""Reconstruct: MAGE's mesh stage. Posed multi-view G-buffers (views.MultiViewSet) -> visual hull -> mesh optimisation
through the differentiable mesh rasterizer -> xatlas UVs -> angle-weighted baking into PBR maps
(views.ReconstructedMesh). Imports `core`, `render` (the rasterizer), `generate` (surface Gaussians and visibility,
so a reconstruction becomes a RelightableAsset) and `export` (GLB / OBJ writers); never service or evaluate."""
