"""Pictures in Dagster metadata: a PNG shown inline in the asset's Markdown metadata."""
import base64
from pathlib import Path

from dagster import MetadataValue


def png_markdown(path: Path, caption: str) -> MetadataValue:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return MetadataValue.md(f"![{caption}](data:image/png;base64,{data})")
