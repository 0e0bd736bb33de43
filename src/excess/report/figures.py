"""The one place figures are styled and written, for every wing's plots.

``pyplot(style)`` returns matplotlib's pyplot on the non-interactive Agg backend with the house style
(mplhep's CMS or ATLAS look, never LaTeX); ``save_figure(fig, path)`` writes a PNG atomically (a
temporary name, then a rename) and closes the figure.
"""

from __future__ import annotations

from pathlib import Path

from .._util import atomic_path

__all__ = ["pyplot", "save_figure", "color"]


def pyplot(style: str | None = "cms"):
    """matplotlib.pyplot on the Agg backend; ``style`` is ``"cms"``, ``"atlas"`` (mplhep) or ``None``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if style:
        try:
            import mplhep

            plt.style.use({"cms": mplhep.style.CMS, "atlas": mplhep.style.ATLAS}[style])
        except Exception:  # pragma: no cover - style is cosmetic
            pass
    plt.rcParams["text.usetex"] = False
    return plt


def color(i: int):
    """The ``i``-th colour of the house cycle (tab10)."""
    import matplotlib.pyplot as plt

    return plt.get_cmap("tab10")(i % 10)


def save_figure(fig, path, *, rect: tuple[float, float, float, float] | None = None, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically and close it.

    ``rect``: lay the figure out with ``tight_layout(rect=rect)`` (room for a note below the axes);
    without it the saved area is trimmed to the drawn content (``bbox_inches="tight"``).
    """
    import matplotlib.pyplot as plt

    path = Path(path)
    if rect is not None:
        fig.tight_layout(rect=rect)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches=None if rect is not None else "tight", format="png")
    plt.close(fig)
    return path


_RESONANT_LABELS = {"mjj": "$m_{jj}$", "mT": "$m_T$", "mt": "$m_T$"}


def resonant_label(name: str = "mjj", unit: str = "GeV") -> str:
    """Axis label of a search's resonant feature: ``"mjj"`` -> ``$m_{jj}$ [GeV]``, ``"mT"`` -> ``$m_T$ [GeV]``;
    any other column name is shown as is (with ``unit`` when given)."""
    label = _RESONANT_LABELS.get(name, name)
    return f"{label} [{unit}]" if unit else label
