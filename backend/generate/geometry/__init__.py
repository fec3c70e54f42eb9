"""Geometry providers: each turns the request into a mesh in the unit cube plus the image's camera (`base.py`).
Imports `core` only."""
