"""Files for people: the static atlas site, contact sheets, a layer's concept sheet, evolution GIFs,
manifests and ZIP bundles.

Names are imported on first use (featviz_core/lazy.py)."""
from ..lazy import lazy_names

__getattr__, __dir__, __all__ = lazy_names(__name__, {
    ".concept_sheet": "concept_sheet",
    ".sheets": "contact_sheet evolution_gif manifest manifest_item zip_bundle",
    ".site": "describe export_from_store write_site",
})
