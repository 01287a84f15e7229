"""Command line: `python -m featviz_core SUBCOMMAND` (installed: `featviz ...`), one module per subcommand.
Bad input is one line on stderr and exit code 2."""
from __future__ import annotations

import os
import sys
from typing import Sequence

from ..errors import FeatvizError
from ..spec import MAX_CHANNELS_PER_RUN, parse_channels  # noqa: F401 (the channel grammar, as the CLI reads it)
from . import atlas, circuit, concepts, dashboard, dream, exemplars, listing, render, similarity
from ._common import Parser, prog

# Subcommands: each module has add_parser(subparsers) and run(args) -> exit code.
SUBCOMMANDS = {"models": listing, "layers": listing, "render": render, "atlas": atlas, "dream": dream,
               "exemplars": exemplars, "circuit": circuit, "similarity": similarity, "concepts": concepts,
               "dashboard": dashboard}


def build_parser() -> Parser:
    parser = Parser(prog=prog(), description="Feature visualization by activation maximization.")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in dict.fromkeys(SUBCOMMANDS.values()):
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "pass_through", False):  # only `dashboard` hands its arguments on
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.streamlit_args = extra
    try:
        if getattr(args, "weights", None) and not os.path.isfile(args.weights):
            raise FeatvizError(f"--weights {args.weights!r} does not exist or is not a file.")
        return SUBCOMMANDS[args.command].run(args)
    except FeatvizError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)  # one line, whatever the message
        return 2
