"""Render settings: one frozen dataclass, and the named presets the service, CLI and evaluations choose from."""

from dataclasses import dataclass

from .transfer import TRANSFER_RANK


@dataclass(frozen=True)
class RenderSettings:
    """How a frame is rendered. The defaults are the reference ("final") quality the evaluations measure."""

    supersample: int = 2
    """Samples per pixel edge: G-buffers are rasterized and shaded at this many, then box-filtered down (antialiased
    silhouettes: dense surface splats saturate alpha, so blurring them instead would grow the silhouette)."""

    specular_samples: int = 256
    """GGX lobe samples per pixel for the specular term (shading.shade); 0 = the split-sum prefiltered lookup only.
    Every pixel reads the same Hammersley set, so too few samples leave a smooth, blotchy error on a metal under a
    studio's panels rather than grain. 256 rather than 128: forward renders of 29 random-suite cases (seed 0, true
    material, under both of each case's lights) against Cycles gained 0.49 dB on average, up to 4.5 on a metal
    (r 0.3) under a studio, and lost at most 0.31; a frame's shading costs ~1.8x (at 512², 0.76 -> 1.35 s for a
    metal object; docs/relight_eval/stop25_mips)."""

    shadow_rank: int = 0
    """0: a new light's shadows sum every visibility direction; > 0: from the asset's precomputed transfer with this
    many basis directions (transfer.py: ~5x faster per light, mean error ~0.1 % of the irradiance)."""

    shadows: bool = True
    """False shades with the light-independent ambient occlusion instead of light-dependent shadows."""

    exact_lights: bool = True
    """With shadow_rank 0: strong lights (a sun) get their own shadow ray per Gaussian (strong_lights.py) instead of
    the visibility cell they fall in. The transfer (shadow_rank > 0) does not give them theirs yet."""

    bounces: int = 8
    """With shadow_rank 0: bounces of diffuse interreflection in the shadows (shadows.gaussian_shadows). Cycles
    follows many: in a white furnace its concave pixels of the forward evaluation's extruded text come out at
    0.647, one bounce gave 0.560 and eight 0.643 (docs/relight_eval/stop26_bounce)."""

    linked_bounces: bool = True
    """With shadow_rank 0: a blocked ray sees the Gaussian it lands on (bounce_links.py) rather than the mean of the
    occluded surfaces facing back along it. False with bounces 1 is what the transfer (shadow_rank > 0) gives."""

    specular_visibility: bool = True
    """Specular occlusion from the share of the light each Gaussian's GGX lobe gathers, seen from this view, that
    escapes the object (specular_visibility.py; from its visibility bits and the strong lights' shadow rays, ~0.1 s
    per 100k Gaussians, view and light) instead of its ambient occlusion: a concavity's mirror direction can look out
    where most of its hemisphere is blocked, and a sun's highlight is gone in its shadow. The live preview keeps the
    AO (a new computation on every camera move)."""

    mesh_coverage: bool = True
    """Coverage from the asset's mesh (frame.render): no holes where surface splats thin out. False keeps the splats'
    own alpha: delighting's trial renders, which compare only pixels the splats cover fully (alpha > 0.99) with the
    photo, whose silhouette is antialiased (measured: with mesh coverage the polished steel box of `relight eval
    relight` came out at roughness 0.25 instead of 0.2 and relit 4.8 dB worse)."""


FINAL = RenderSettings()
# The interactive one (the add-on's Preview, world rotation and camera drags): one sample per pixel, prefiltered
# lookups only, a new light's shadows from the precomputed transfer (one bounce of the directional mean), specular
# occlusion from the AO.
PREVIEW = RenderSettings(supersample=1, specular_samples=0, shadow_rank=TRANSFER_RANK, bounces=1, linked_bounces=False,
                         specular_visibility=False)  # fmt: skip
PRESETS = {"preview": PREVIEW, "final": FINAL}  # by the names the protocol and the CLI use
