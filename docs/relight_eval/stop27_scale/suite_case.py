"""What this folder's suite probes share: one case of `relight eval relight --suite random` set up as the suite's
run_case does (Cycles' renders under lights A and B, cached; the input as the suite makes it; light B prefiltered;
light A as the input records it), and its generate with the light unknown. The probes import it from here."""
from dataclasses import dataclass

import numpy as np

from relight.evaluate.suite import SuiteConfig, suite_input, view_camera
from relight.evaluate.suite_scenes import light_environment, render_object
from relight.evaluate.suite_shapes import suite_mesh
from relight.generate.pipeline import GenerateInputs, generate

CFG = SuiteConfig()
CAM = view_camera(CFG.size)


@dataclass
class SuiteCase:
    case: object  # suite_cases.Case
    inp: object  # InputImage: the photo or float render under light A
    ref_b: np.ndarray  # [H, W, 4] Cycles under light B, premultiplied linear
    env_b: object  # light B's Environment, prefiltered
    given: object  # light A's Environment as the input records it (a photo's exposure applied), prefiltered


def suite_case(case) -> SuiteCase:
    env_a = light_environment(case.light_a).prefilter()
    inp, exposure = suite_input(render_object(case, case.light_a, CAM, CFG.samples), case.form)
    return SuiteCase(case, inp, render_object(case, case.light_b, CAM, CFG.samples),
                     light_environment(case.light_b).prefilter(),
                     env_a.with_transform(env_a.rotation_z, env_a.strength * exposure))


def generate_unknown(sc: SuiteCase):
    """The case's asset with the light unknown, exact mesh and camera, as the suite generates it."""
    return generate(GenerateInputs(image=sc.inp, name=sc.case.name, provider="scene", light_hint="unknown",
                                   n_gaussians=CFG.n_gaussians, mesh=suite_mesh(sc.case.shape), camera=CAM))
