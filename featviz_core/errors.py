"""The one exception type users see: its text is what the CLI prints and the dashboard shows."""
from __future__ import annotations

import difflib
from typing import Iterable


class FeatvizError(ValueError):
    """Bad input or an unrecoverable render problem, with a message meant for a person."""


def unknown_choice(kind: str, given: str, choices: Iterable[str], limit: int = 40) -> FeatvizError:
    """An error for a name that is not among `choices`, suggesting the nearest ones."""
    choices = list(choices)
    near = difflib.get_close_matches(given, choices, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(n) for n in near)}?" if near else ""
    shown = ", ".join(choices[:limit]) + (f", ... ({len(choices)} in all)" if len(choices) > limit else "")
    return FeatvizError(f"Unknown {kind} {given!r}.{hint} Valid {kind}s: {shown}.")
