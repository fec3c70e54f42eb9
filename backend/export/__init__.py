"""Export: the asset as files: the baked PBR mesh (GLB) and the Gaussians (PLY). Imports `core` and `render`
(the bake rasterizes in UV space)."""
