"""Pictures in Dagster metadata: a PNG shown inline in the asset's Markdown metadata."""
import base64
from pathlib import Path

from dagster import MetadataValue


def png_markdown(path: Path, caption: str) -> MetadataValue:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return MetadataValue.md(f"![{caption}](data:image/png;base64,{data})")


def training_curves_metadata(png: Path | None, asset: str) -> dict[str, MetadataValue]:
    """``{"training_curves": ...}`` for the asset's output metadata, empty when the run drew no curves."""
    return {"training_curves": png_markdown(png, f"{asset} training curves")} if png else {}
