"""The one exception type users see: its text is what the CLI prints and the dashboard shows."""
from __future__ import annotations

import difflib
from typing import Iterable


class FeatvizError(ValueError):
    """Bad input or an unrecoverable render problem, with a message meant for a person."""


class UnusableWeightsError(FeatvizError):
    """Weights that fit the architecture but cannot give a picture (the message names the tensor)."""


def unknown_choice(kind: str, given: str, choices: Iterable[str], shown: Iterable[str] | None = None,
                   limit: int = 40, where: str = "") -> FeatvizError:
    """An error for a name that is not among `choices`, suggesting the nearest ones.
    `shown` is how the valid choices are listed (default: `choices` themselves)."""
    choices = list(choices)
    near = difflib.get_close_matches(given, choices, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(n) for n in near)}?" if near else ""
    listed = list(shown) if shown is not None else choices
    shown = ", ".join(listed[:limit]) + (f", ... ({len(listed)} in all)" if len(listed) > limit else "")
    return FeatvizError(f"Unknown {kind} {given!r}{where}.{hint} Valid {kind}s{where}: {shown}.")


def megabytes(n: int) -> str:
    """A byte count as people read it in messages."""
    return f"{n / 2**20:.1f} MB"
