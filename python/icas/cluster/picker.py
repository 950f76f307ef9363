"""The threshold plot and the interactive threshold picker (extra ``icas[plot]``:
matplotlib).

The plot shows the similarities of all pairs of a sample of up to 1000 images,
sorted: the y axis is the threshold, the x axis (logarithmic) the number of
pairs at least that similar. Pairs of near-duplicates make a shelf at the top
left; the drop after it is where a threshold belongs. A second panel is the
histogram of the same similarities. The ``auto`` threshold and the method's
default are marked.

Hovering over the curve shows the threshold under the mouse, the number of
sample pairs at least that similar, and the approximate number of images that
would be clustered (images of the sample with a match at least that similar,
scaled to the whole run) in how many clusters; a left click picks the
threshold and closes the window. Without a screen the picker never opens a
window: it raises :class:`NoScreenError` at once.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from icas.cluster.methods import default_threshold
from icas.cluster.threshold import SampleSimilarities

TITLE = "icas: pick a threshold"
_NOT_A_SCREEN = ("webagg", "nbagg", "notebook")


class NoScreenError(RuntimeError):
    """The interactive picker was asked for where no window can open."""


def _matplotlib():
    try:
        import matplotlib
    except ImportError:
        raise ImportError(
            "the threshold plot and picker need matplotlib: pip install 'icas[plot]'"
        ) from None
    return matplotlib


def _interactive_backends() -> set[str]:
    try:
        from matplotlib.backends import BackendFilter, backend_registry

        names = backend_registry.list_builtin(BackendFilter.INTERACTIVE)
    except ImportError:  # matplotlib < 3.9
        from matplotlib import rcsetup

        names = rcsetup.interactive_bk
    return {n.lower() for n in names} - set(_NOT_A_SCREEN)


def check_screen() -> None:
    """Raise :class:`NoScreenError` unless matplotlib can open a window here.

    Imports pyplot, which picks a GUI backend only when a display is usable
    (on Linux it checks that ``DISPLAY``/``WAYLAND_DISPLAY`` lead to a
    server) and falls back to the non-interactive Agg otherwise."""
    _matplotlib()
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        raise NoScreenError(_no_screen("DISPLAY is not set"))
    import matplotlib.pyplot as plt

    backend = str(plt.get_backend()).lower()
    if backend not in _interactive_backends():
        raise NoScreenError(
            _no_screen(
                f"matplotlib backend {backend!r}: no reachable display or no GUI toolkit such as "
                "tkinter"
            )
        )


def _no_screen(why: str) -> str:
    return (
        f"--threshold pick needs a screen ({why}); give a number or 'auto' "
        "(--threshold-plot FILE.png saves the plot to choose from)"
    )


def _curve(stats: SampleSimilarities) -> tuple[np.ndarray, np.ndarray]:
    """Points of the sorted-similarity curve, thinned evenly on the log x axis
    (the curve is monotone, so the points kept lie exactly on it)."""
    p = len(stats.pairs)
    if p == 0:
        return np.empty(0), np.empty(0)
    x = np.unique(np.geomspace(1, p, num=min(p, 4000)).round().astype(np.int64))
    return x.astype(np.float64), stats.pairs[x - 1]


def draw(fig, stats: SampleSimilarities, *, threshold: float | None = None, histogram: bool = True):
    """Draw the plot into a matplotlib figure; returns the curve's axes."""
    low, high = stats.range
    marks = {"auto": stats.auto(), "default": default_threshold(stats.method)}
    if histogram:
        ax, hx = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    else:
        ax, hx = fig.subplots(1, 1), None
    x, y = _curve(stats)
    ax.plot(x, y, color="C0", lw=1.5, drawstyle="steps-post")
    if len(x):
        ax.set_xscale("log")
        ax.set_xlim(1, max(2.0, x[-1]))
    ax.set_ylim(low, high)
    ax.set_xlabel(
        f"pairs at least that similar (of {len(stats.pairs):,} pairs, "
        f"{stats.n_sample:,} of {stats.n_total:,} images)"
    )
    ax.set_ylabel(f"threshold ({stats.method} similarity)")
    ax.grid(True, which="both", alpha=0.3)
    styles = {"auto": ("C2", "--"), "default": ("C7", ":"), "threshold": ("C3", "-")}
    lines = dict(marks)
    if threshold is not None:
        lines["threshold"] = threshold
    for name, value in lines.items():
        color, ls = styles[name]
        label = f"{name} {value:.3f}"
        ax.axhline(value, color=color, ls=ls, lw=1, label=label)
        if hx is not None:
            hx.axvline(value, color=color, ls=ls, lw=1, label=label)
    ax.legend(loc="lower left", fontsize="small")
    if hx is not None:
        if len(stats.pairs):
            hx.hist(stats.pairs, bins=60, range=(low, high), color="C0", log=True)
        hx.set_xlim(low, high)
        hx.set_xlabel("similarity")
        hx.set_ylabel("pairs")
        hx.set_title("histogram", fontsize="medium")
    fig.suptitle(f"{stats.method}: similarities of a sample", fontsize="medium")
    return ax


def describe(stats: SampleSimilarities, t: float) -> str:
    """The hover text for threshold t."""
    return (
        f"threshold {t:.3f}\n"
        f"{stats.pairs_at_least(t):,} pairs >= it\n"
        f"~{stats.estimate(t):,} of {stats.n_total:,} images clustered\n"
        f"({stats.images_clustered(t)} of {stats.n_sample} sampled, "
        f"{stats.clusters(t)} clusters)"
    )


def save_plot(stats: SampleSimilarities, path, *, threshold: float | None = None) -> Path:
    """Write the plot with its histogram to a PNG file; needs no screen
    (draws with Agg, never through pyplot)."""
    _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: the folder for the threshold plot does not exist")
    fig = Figure(figsize=(11, 5), layout="constrained")
    FigureCanvasAgg(fig)
    draw(fig, stats, threshold=threshold)
    fig.savefig(path, dpi=100)
    return path


class ThresholdPicker:
    """Hover and click handling on a figure showing the plot.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        An empty figure with a canvas (any backend).
    stats : SampleSimilarities
    on_pick : callable, optional
        Called with the picked threshold after a left click on the curve's
        axes (the CLI closes the window there).

    Attributes
    ----------
    picked : float or None
        The threshold picked by the last click.
    text : str
        The hover text shown last ("" when hidden).
    """

    def __init__(self, fig, stats: SampleSimilarities, on_pick=None):
        self.fig = fig
        self.stats = stats
        self.on_pick = on_pick
        self.picked: float | None = None
        self.text = ""
        self.ax = draw(fig, stats, histogram=True)
        self.line = self.ax.axhline(stats.range[1], color="C3", lw=1, visible=False)
        self.note = self.ax.annotate(
            "",
            xy=(0, 0),
            xycoords="axes fraction",
            xytext=(0.98, 0.98),
            textcoords="axes fraction",
            ha="right",
            va="top",
            fontsize="small",
            bbox={"boxstyle": "round", "fc": "lightyellow", "alpha": 0.9},
            visible=False,
        )
        self.ax.set_title("hover to see a threshold's effect; click to pick it", fontsize="small")
        self._ids = [
            fig.canvas.mpl_connect("motion_notify_event", self.on_move),
            fig.canvas.mpl_connect("button_press_event", self.on_click),
        ]

    def threshold_at(self, event) -> float | None:
        """The threshold under the mouse (its height), or None off the axes."""
        if event.inaxes is not self.ax or event.ydata is None:
            return None
        low, high = self.stats.range
        return float(min(max(event.ydata, low), high))

    def on_move(self, event) -> None:
        t = self.threshold_at(event)
        if t is None:
            if self.note.get_visible():
                self.note.set_visible(False)
                self.line.set_visible(False)
                self.text = ""
                self.fig.canvas.draw_idle()
            return
        self.text = describe(self.stats, t)
        self.note.set_text(self.text)
        self.line.set_ydata([t, t])
        self.note.set_visible(True)
        self.line.set_visible(True)
        self.fig.canvas.draw_idle()

    def on_click(self, event) -> None:
        toolbar = getattr(self.fig.canvas, "toolbar", None)
        if toolbar is not None and str(getattr(toolbar, "mode", "")):
            return  # zooming or panning, not picking
        if getattr(event, "button", None) != 1:
            return
        t = self.threshold_at(event)
        if t is None:
            return
        self.picked = t
        if self.on_pick is not None:
            self.on_pick(t)


def pick_threshold(stats: SampleSimilarities) -> float:
    """Show the plot in a window and return the threshold the user clicks.

    Raises NoScreenError without a screen and RuntimeError if the window is
    closed without a pick."""
    check_screen()
    import matplotlib.pyplot as plt

    fig = plt.figure(TITLE, figsize=(11, 5.5), layout="constrained")
    picker = ThresholdPicker(fig, stats, on_pick=lambda t: plt.close(fig))
    plt.show(block=True)
    plt.close(fig)
    if picker.picked is None:
        raise RuntimeError(
            "no threshold picked (the window was closed); give --threshold "
            "NUMBER or --threshold auto"
        )
    return picker.picked
