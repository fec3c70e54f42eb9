"""Relight backend: one image of an object in, a relightable 3D asset out."""

__version__ = "0.1.0"
