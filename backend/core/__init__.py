"""What every stage uses: the camera and axes, colour, environment maps, the asset and its Gaussians, surface
sampling, frames between asset and world space, small caches. Imports nothing from the rest of `relight`."""
