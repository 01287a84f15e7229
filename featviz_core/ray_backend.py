"""Ray backend for workers.run_work (work in progress): imported only when a run asks for Ray."""
from __future__ import annotations

from .errors import FeatvizError
from .workers import RAY_INSTALL_HINT


def import_ray():
    """The ray module, or a FeatvizError that says how to install it (Ray is an optional extra)."""
    try:
        import ray
    except ImportError:
        raise FeatvizError(RAY_INSTALL_HINT) from None
    return ray


def run_on_ray(source, items, address, workers):
    import_ray()
    raise FeatvizError("The Ray backend is not ready yet.")
