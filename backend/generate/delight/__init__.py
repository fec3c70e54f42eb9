"""Delighting (lighting homogenization): the light baked into the photo removed by inverse rendering against the
geometry. `homogenize.delight` is the stage; the forward model, the light fit, the material search and the unseen
side each have a module. Imports core and render (the renderer is the forward model it inverts)."""
