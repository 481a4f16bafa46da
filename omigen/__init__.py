"""omigen: realistic synthetic omics data with deep generative models.

The package is a plugin host. Importing it is cheap: torch, umap and the other heavy
libraries are imported only inside the functions that need them.
"""

__version__ = "0.1.0"

from omigen.errors import OmigenError, OmigenInputError

__all__ = ["__version__", "OmigenError", "OmigenInputError"]


def __getattr__(name: str):
    # ``from omigen import hookimpl`` without importing pluggy for every ``import omigen``.
    if name == "hookimpl":
        from omigen.hookspecs import hookimpl

        return hookimpl
    raise AttributeError(f"module 'omigen' has no attribute {name!r}")
