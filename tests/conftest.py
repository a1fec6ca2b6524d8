"""Shared test setup."""

import contextlib
import warnings

# A failing hypothesis test imports libcst (to suggest a patch), which emits a
# DeprecationWarning that setup.cfg's filterwarnings=error turns into an
# INTERNALERROR hiding the real failure. Import it once, up front, quietly.
with warnings.catch_warnings(), contextlib.suppress(ImportError):
    warnings.simplefilter("ignore", DeprecationWarning)
    import hypothesis.extra._patching  # noqa: F401
