"""The ground plane a scene may stand on: a description shared by the renderer and the Cycles ground truth."""

from dataclasses import dataclass


@dataclass(frozen=True)
class GroundPlane:
    """A horizontal ground square (world Z up) that receives the asset's cast shadow, with a Principled
    dielectric material (specular 0.5)."""

    z: float = 0.0  # world height
    albedo: tuple = (0.5, 0.5, 0.5)  # linear Rec.709
    roughness: float = 0.9
    size: float = 40.0  # edge length, centred at `center`
    center: tuple = (0.0, 0.0)  # world (x, y)
