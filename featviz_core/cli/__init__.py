"""The command line: `featviz SUBCOMMAND` (or `python -m featviz_core SUBCOMMAND`), one module per subcommand."""
from .main import main

__all__ = ["main"]
