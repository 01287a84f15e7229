"""The README's examples work: each ```python block runs as written (in an empty temporary folder, on the
real Lite0 weights, with a `photos/` folder of three small photos for the dataset-examples block), and
each command it shows (`python -m featviz_core ...` or `featviz ...`, in ```bash blocks and in the text)
names a subcommand the command line has and, written out in full, parses (the options exist, the required
ones are there). Commands are parsed, never run; a sketch (`featviz render ...`) checks its subcommand only."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
COMMAND = re.compile(r"^(?:python -m featviz_core|featviz)(?=\s|$)")
INLINE = re.compile(r"(?<!`)`((?:python -m featviz_core|featviz)\s[^`]*)`")


def _line(offset: int) -> int:
    return README.count("\n", 0, offset) + 1


def _blocks(language: str) -> list[tuple[int, str]]:
    """(line of the first code line, code) of every fenced block in `language`."""
    return [(_line(m.start(2)), m.group(2)) for m in FENCE.finditer(README) if m.group(1) == language]


def _commands() -> list[tuple[int, str]]:
    """Every featviz command the README shows, comments dropped, whitespace collapsed."""
    found = []
    for first, code in _blocks("bash"):
        for i, line in enumerate(code.splitlines()):
            command = line.split(" #")[0].strip()
            if COMMAND.match(command):
                found.append((first + i, command))
    fenced = [(m.start(), m.end()) for m in FENCE.finditer(README)]
    for m in INLINE.finditer(README):
        if not any(start <= m.start() < end for start, end in fenced):
            found.append((_line(m.start()), " ".join(m.group(1).split())))
    return found


PYTHON_BLOCKS = _blocks("python")
COMMANDS = _commands()


def test_the_readme_has_examples():
    assert len(PYTHON_BLOCKS) >= 4 and len(COMMANDS) >= 20
    assert any(c.startswith("featviz dashboard") for _, c in COMMANDS)


@pytest.fixture
def photos_here(tmp_path, monkeypatch):
    """An empty working folder holding only `photos/`: three small scikit-image photos."""
    import skimage.data

    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos").mkdir()
    for name in ("chelsea", "coffee", "astronaut"):
        img = Image.fromarray(np.asarray(getattr(skimage.data, name)()))
        img.thumbnail((256, 256))
        img.save(tmp_path / "photos" / f"{name}.jpg", quality=90)
    return tmp_path


@pytest.mark.real_model
@pytest.mark.parametrize("first, code", PYTHON_BLOCKS, ids=[f"README.md:{n}" for n, _ in PYTHON_BLOCKS])
def test_python_block_runs(first, code, photos_here):
    exec(compile(code, f"README.md:{first}", "exec"), {"__name__": "__readme__"})


def _argv(command: str) -> list[str]:
    words = shlex.split(command)
    return words[3:] if words[0] == "python" else words[1:]


@pytest.mark.parametrize("line, command", COMMANDS, ids=[f"README.md:{n}" for n, _ in COMMANDS])
def test_command_is_one_the_cli_knows(line, command, capsys):
    from featviz_core.cli.main import build_parser

    parser = build_parser()
    argv = _argv(command)
    known = next(a for a in parser._actions if a.dest == "command").choices  # argparse's subcommands
    assert argv and argv[0] in known, f"README.md:{line}: `{command}`: no subcommand {argv[:1]} ({sorted(known)})"
    if len(argv) == 1 or "..." in command or "[" in command:  # named, or a sketch (`featviz render ...`)
        with pytest.raises(SystemExit) as done:
            parser.parse_known_args([argv[0], "--help"])
        assert done.value.code == 0, f"README.md:{line}: `{command}`: {capsys.readouterr().err}"
        return
    try:
        args, extra = parser.parse_known_args(argv)  # parsed only: nothing runs
    except SystemExit as exc:
        pytest.fail(f"README.md:{line}: `{command}` does not parse (exit {exc.code}): {capsys.readouterr().err}")
    assert not extra or getattr(args, "pass_through", False), f"README.md:{line}: `{command}`: unknown {extra}"
