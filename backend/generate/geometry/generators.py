"""The mesh generators this machine can run, as geometry providers: Hunyuan3D-2 (`hunyuan3d`, with the `hunyuan` extra
and local weights) and any generator that runs as another program (`command`, a command template). Where they are
found is set once per process (GeneratorSettings: `relight serve` / `relight generate` options, else the
environment); the server's hello lists the providers available, and the add-on offers only those."""

import os
from dataclasses import dataclass

from relight_protocol.vocabulary import GEOMETRY_PROVIDERS

from .command import GeneratorError, check_template, run_command
from .hunyuan import DEFAULT_OCTREE_RESOLUTION, DEFAULT_STEPS, Hunyuan3DGenerator

BUILTIN = ("inflate", "scene")  # always available
GENERATORS = ("hunyuan3d", "command")  # available when configured (and, for hunyuan3d, installed with weights)
assert set(BUILTIN + GENERATORS) == set(GEOMETRY_PROVIDERS)


@dataclass(frozen=True)
class GeneratorSettings:
    hunyuan_models: str | None = None  # Hunyuan3D-2's models folder (None: $HY3DGEN_MODELS, else ~/.cache/hy3dgen)
    command: str | None = None  # an external generator's command template (None: $RELIGHT_GENERATOR_CMD, else none)
    hunyuan_steps: int = DEFAULT_STEPS  # Hunyuan3D-2's flow-matching steps
    hunyuan_octree: int = DEFAULT_OCTREE_RESOLUTION  # its marching-cubes cells per side (about 128 on a CPU)

    @staticmethod
    def from_environment(hunyuan_models: str | None = None, command: str | None = None, hunyuan_steps: int | None = None,
                         hunyuan_octree: int | None = None) -> "GeneratorSettings":  # fmt: skip
        """Options given on the command line win over the environment."""
        return GeneratorSettings(hunyuan_models, command or os.environ.get("RELIGHT_GENERATOR_CMD") or None,
                                 hunyuan_steps or DEFAULT_STEPS, hunyuan_octree or DEFAULT_OCTREE_RESOLUTION)


class HunyuanRun:
    """Hunyuan3D-2 with this machine's steps and resolution, behind the generators' generate_mesh signature."""

    def __init__(self, generator: Hunyuan3DGenerator, steps: int, octree: int):
        self.generator, self.steps, self.octree = generator, steps, octree

    def generate_mesh(self, rgba, progress=None, **_):
        kw = {"progress": progress} if progress else {}
        return self.generator.generate_mesh(rgba, steps=self.steps, octree_resolution=self.octree, **kw)


class CommandGenerator:
    """An external program as a generator (command.run_command), with the generate_mesh signature of Hunyuan's."""

    def __init__(self, template: str):
        self.template = check_template(template)

    def generate_mesh(self, rgba, progress=None, **_):
        if progress:
            progress("command", 0.0, f"running {self.template.split()[0]}")
        return run_command(self.template, rgba)


def make_generator(provider: str, settings: GeneratorSettings | None):
    """The generator behind `provider` ('hunyuan3d' or 'command'); GeneratorError saying why it cannot run here."""
    settings = settings or GeneratorSettings.from_environment()
    if provider == "hunyuan3d":
        gen = Hunyuan3DGenerator(settings.hunyuan_models)
        ok, reason = gen.available()
        if not ok:
            raise GeneratorError(reason)
        return HunyuanRun(gen, settings.hunyuan_steps, settings.hunyuan_octree)
    if provider == "command":
        if not settings.command:
            raise GeneratorError("no generator command is set: start the backend with --generator-cmd "
                                 "'PROGRAM {image} {mesh.glb}' or set $RELIGHT_GENERATOR_CMD")
        return CommandGenerator(settings.command)
    raise GeneratorError(f"{provider!r} is not a generator; generators are {', '.join(GENERATORS)}")


def generator_identity(provider: str, settings: GeneratorSettings | None) -> str:
    """What makes a generator's output differ, for the asset's content id: the weights folder or the command."""
    settings = settings or GeneratorSettings.from_environment()
    if provider == "hunyuan3d":
        return f"{Hunyuan3DGenerator(settings.hunyuan_models).folder}|{settings.hunyuan_steps}|{settings.hunyuan_octree}"
    return settings.command or "" if provider == "command" else ""


def available_providers(settings: GeneratorSettings | None) -> list[str]:
    """The providers this machine can run now: the built-in ones, Hunyuan3D-2 when installed with its weights, the
    command generator when one is set."""
    out = list(BUILTIN)
    for provider in GENERATORS:
        try:
            make_generator(provider, settings)
        except GeneratorError:
            continue
        out.append(provider)
    return out
