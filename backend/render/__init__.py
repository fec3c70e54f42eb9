"""Render: an asset relit under an environment. Splat projection and rasterization, the mesh rasterizer, shadows from
precomputed visibility, split-sum shading, AgX. Imports `core` only: it is the forward model the generator inverts."""
