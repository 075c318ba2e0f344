"""The root of every exception tunestream raises on purpose.

It lives in the lowest layer (``features`` imports nothing of the project), so
``features``, ``online_models`` and ``streams`` all derive from it, and a caller
can catch "anything tunestream refused" in one clause while a bug (a plain
``TypeError``, say) still surfaces.

>>> from features.catalog import CatalogError
>>> issubclass(CatalogError, TunestreamError)
True
"""

from __future__ import annotations


class TunestreamError(Exception):
    """Something tunestream refused or could not do, with a message that says why."""


__all__ = ["TunestreamError"]
