"""Relight backend: one image of an object in, a relightable 3D asset out.

Subpackages in the order the data flows: core (what every stage uses), generate (image -> asset), render (the
relit frame; generate imports it as its forward model), export (GLB, PLY), service (`relight serve`), evaluate (the
harness, apart from the product). Each imports only from the ones before it; cli.py and demo.py import them all."""

__version__ = "0.1.0"
