"""Run the notebook's tagged code cells as a module, for the tests, the benchmarks and the tools.

    nb = notebook_cells("model", "train")   # GPTConfig, CausalSelfAttention, MLP, Block, GPT, TrainConfig, train
"""

import json
import sys
import types
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parents[1] / "assignment3.ipynb"


def cell_source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def notebook_cells(*tags: str, notebook: Path = NOTEBOOK, name: str = "notebook_cells", **namespace):
    """Execute, in order and in a fresh module, the notebook's code cells tagged with one of `tags`. `namespace`
    presets the module's globals (the settings the notebook's earlier cells define)."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    module = types.ModuleType(name)
    module.__dict__.update(namespace)
    sys.modules[name] = module  # dataclasses look their module up here
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "code" and set(tags) & set(cell["metadata"].get("tags", [])):
            exec(compile(cell_source(cell), f"{Path(notebook).name}:cell{i}", "exec"), module.__dict__)
    return module
