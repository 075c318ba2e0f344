"""Drawing helpers shared by the reports' PNG plots (``evaluate --report``, ``report``).

Plots are drawn on matplotlib's non-interactive Agg canvas, without pyplot: no
window, no global figure state, nothing to close. matplotlib is an optional
extra (``pip install 'tunestream[report]'``): :func:`have_matplotlib` tells
whether it can be imported, and :func:`new_figure` raises ImportError without it.

>>> NO_PLOTS
"no plots: they need matplotlib, pip install 'tunestream[report]'"
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Why a report has no plots, and how to get them.
NO_PLOTS = "no plots: they need matplotlib, pip install 'tunestream[report]'"
#: Resolution of the PNG plots, and their size in inches.
DPI = 120
FIGSIZE = (9.0, 4.8)


def have_matplotlib() -> bool:
    """Can the plots be drawn (is matplotlib importable)?"""
    try:
        import matplotlib.backends.backend_agg  # noqa: F401
    except ImportError:
        return False
    return True


def new_figure(figsize: tuple[float, float] = FIGSIZE) -> Figure:
    """A figure on the Agg canvas (PNG bytes, no window), laid out so nothing is cut.

    Raises ImportError when matplotlib is missing.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def label(axes: Axes, title: str, ylabel: str, xlabel: str | None = "events replayed") -> None:
    """Title, axis labels and a light grid."""
    axes.set_title(title)
    axes.set_ylabel(ylabel)
    if xlabel:
        axes.set_xlabel(xlabel)
    axes.grid(True, alpha=0.3)


def legend_outside(axes: Axes) -> None:
    """The legend right of the plot, so it never hides a line."""
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def save(figure: Figure, path: Path) -> Path:
    """Write ``figure`` as a PNG at :data:`DPI`; the path."""
    figure.savefig(path, dpi=DPI)
    return path


__all__ = [
    "DPI",
    "FIGSIZE",
    "NO_PLOTS",
    "have_matplotlib",
    "label",
    "legend_outside",
    "new_figure",
    "save",
]
