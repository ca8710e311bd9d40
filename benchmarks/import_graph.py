"""The import graph of the project's packages, as ``tests/test_layering.py`` reads it: package-level arrows, their
cycles and upward arrows, then the module-level cycles with the imports that close them.

    .venv/bin/python benchmarks/import_graph.py [ROOT]

ROOT: the checkout to read (default: this one), e.g. a ``git worktree`` of an older commit for a before/after.
"""
from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import _paths  # noqa: F401  (puts tests/ on the path)
import test_layering as layering


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", nargs="?", type=Path, default=layering.ROOT, help="the checkout to read")
    root = parser.parse_args().root.resolve()
    imports = layering.import_list(root)
    project = [i for i in imports if i.target.split(".")[0] in layering.PACKAGES]
    print(f"{len(layering.project_modules(root))} modules in {len(layering.PACKAGES)} packages, "
          f"{len(project)} import statements between them\n")
    print("## Package arrows (import statements from one package into another)\n")
    arrows = Counter((i.source.split(".")[0], i.target.split(".")[0]) for i in project)
    for (source, target), count in sorted(arrows.items()):
        if source != target:
            print(f"{source} -> {target}: {count}")
    print("\n## Package cycles\n")
    print("\n".join(" <-> ".join(c) for c in layering.cycles(layering.graph(imports, "package"))) or "none")
    up = layering.upward_arrows(imports)
    print(f"\n## Upward arrows ({len(up)}; forbidden: {layering.FORBIDDEN})\n")
    print("\n".join(map(str, up)) or "none")
    module_cycles = layering.cycles(layering.graph(imports))
    print(f"\n## Module cycles ({len(module_cycles)})\n")
    print("\n".join(layering.describe(c, imports) for c in module_cycles) or "none")


if __name__ == "__main__":
    main()
