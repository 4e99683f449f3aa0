"""The README's Python examples run as written. Blocks that load the quickstart checkpoints
(``tsgen.load``) run in tests/test_quickstart.py, after the commands that make them."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
STANDALONE = [block for block in BLOCKS if "tsgen.load(" not in block]
AFTER_QUICKSTART = [block for block in BLOCKS if "tsgen.load(" in block]


def test_readme_has_python_examples():
    assert STANDALONE
    assert len(AFTER_QUICKSTART) == 1


@pytest.mark.parametrize("index", range(len(STANDALONE)))
def test_readme_python_block_runs(index, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    exec(compile(STANDALONE[index], f"README.md[python block {index}]", "exec"), {})
