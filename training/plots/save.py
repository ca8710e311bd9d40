"""Writing a finished matplotlib figure to a PNG file."""
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def save_png(fig: Figure, path: str | Path, **savefig_kwargs: Any) -> Path:
    """Lay out ``fig``, write it to ``path`` (folders created), close it and return the path."""
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, **savefig_kwargs)
    plt.close(fig)
    return path
