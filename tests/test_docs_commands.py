"""The README, the quickstart and the pretrained-encoders pages are executable truth: every command and Python
block runs as written.

Each fenced ``bash`` and ``python`` block runs on its own in a fresh folder (as a reader who copies one block
runs it), with this interpreter's ``bin/`` first on ``PATH`` so that ``sb3-crptpro`` is the installed entry point.
The repository scripts (``bash scripts/demo.sh``, ``bash scripts/test.sh``) are not re-run from inside pytest
(``test.sh`` runs this very suite); instead the test checks that ``.ci/run`` runs each of them.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
DOCUMENTS = [ROOT / "README.md", ROOT / "docs" / "quickstart.md", ROOT / "docs" / "pretrained.md"]
_FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def code_blocks(path: Path) -> list[tuple[str, str]]:
    """``(language, source)`` of each fenced block of a Markdown file, in order."""
    return [(m.group(1), m.group(2)) for m in _FENCE.finditer(path.read_text())]


def shell_commands(source: str) -> list[str]:
    """The commands of a bash block: one per line (backslash continuations joined), comments and blanks dropped."""
    joined = source.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        command = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if command:
            commands.append(command)
    return commands


def _repo_script(command: str) -> str | None:
    words = shlex.split(command)
    if len(words) >= 2 and words[0] == "bash" and words[1].startswith("scripts/"):
        return words[1]
    return None


def test_parser_reads_blocks_and_commands() -> None:
    text = "x\n```bash\n# c\nsb3-crptpro a \\\n  --b 1  # note\n\nls\n```\n```python\nprint(1)\n```\n"
    blocks = [(m.group(1), m.group(2)) for m in _FENCE.finditer(text)]
    assert blocks == [("bash", "# c\nsb3-crptpro a \\\n  --b 1  # note\n\nls\n"), ("python", "print(1)\n")]
    assert shell_commands(blocks[0][1]) == ["sb3-crptpro a    --b 1", "ls"]


@pytest.mark.parametrize("document", DOCUMENTS, ids=[p.name for p in DOCUMENTS])
def test_document_has_runnable_blocks(document: Path) -> None:
    languages = {language for language, _ in code_blocks(document)}
    assert {"bash", "python"} <= languages, f"{document.name}: expected bash and python blocks, found {languages}"


def test_repository_scripts_in_docs_are_run_by_ci() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    scripts = {
        script
        for document in DOCUMENTS
        for language, source in code_blocks(document)
        if language == "bash"
        for command in shell_commands(source)
        if (script := _repo_script(command))
    }
    assert {"scripts/demo.sh", "scripts/test.sh"} <= scripts
    for script in scripts:
        assert (ROOT / script).is_file(), script
        assert script in ci, f".ci/run does not run {script}, which the docs tell users to run"


#: every runnable block: (document, index of the block in it)
BLOCKS = [(document, index) for document in DOCUMENTS for index, (language, _) in enumerate(code_blocks(document))
          if language in ("bash", "python")]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(("document", "index"), BLOCKS, ids=[f"{d.name}-{i}" for d, i in BLOCKS])
def test_block_runs_as_written_in_a_fresh_folder(document: Path, index: int, tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    language, source = code_blocks(document)[index]
    if language == "bash":
        for command in shell_commands(source):
            if _repo_script(command):
                continue  # run by .ci/run (test_repository_scripts_in_docs_are_run_by_ci)
            proc = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                                  timeout=900)  # fmt: skip
            assert proc.returncode == 0, f"{document.name}: `{command}` failed:\n{proc.stderr[-3000:]}"
    elif language == "python":
        script = tmp_path / f"block_{index}.py"
        script.write_text(source)
        proc = subprocess.run([sys.executable, script.name], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=900)  # fmt: skip
        assert proc.returncode == 0, f"{document.name}: Python block {index} failed:\n{proc.stderr[-3000:]}"
