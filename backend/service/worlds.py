"""The server's recent worlds: an equirect travels once (with its world_id), later render requests name it and send
only rotation and strength; kept with their prefiltered data in an LRU, like the asset store's cache."""

from relight_protocol.errors import UnknownWorld
from relight_protocol.lru import LRU

from ..core.envmap import Environment

WORLD_CACHE_SIZE = 8  # worlds (equirect + prefiltered levels, ~10-40 MB each at 1-2k) kept per server

_WORLDS = LRU(WORLD_CACHE_SIZE)  # world_id -> Environment (rotation 0, strength 1): holds its _Prefiltered data


def world_environment(world: dict) -> tuple[Environment, str]:
    """A validated render world (relight_protocol.messages.validate_world_ref) -> (Environment at the request's
    rotation and strength, the world_id later requests can send instead of the equirect). An equirect is cached
    under its world_id when the client named it, else under its content id; an unknown world_id without an equirect
    raises UnknownWorld (the client sends the equirect again)."""
    if world["equirect"] is not None:
        base = Environment(world["equirect"])
        world_id = world["world_id"] or base.identity  # the content id: a SHA-1, within MAX_ID_CHARS
        _WORLDS.put(world_id, base)
    else:
        world_id = world["world_id"]
        base = _WORLDS.get(world_id)
        if base is None:
            raise UnknownWorld(f"world {world_id!r} is not cached on this server (it keeps the last "
                               f"{WORLD_CACHE_SIZE} worlds); send world.equirect again with this world_id")
    return base.with_transform(world["rotation_z"], world["strength"]), world_id
