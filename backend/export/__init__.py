"""Export: the asset as files: the baked PBR mesh (GLB), the Gaussians (PLY), and a reconstruction's baked mesh (GLB
with a normal map, OBJ + MTL + PNG maps). Imports `core` and `render` (the bake rasterizes in UV space)."""
