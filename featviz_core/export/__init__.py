"""Files for people: the static atlas site, contact sheets, evolution GIFs, manifests and ZIP bundles."""
from .sheets import contact_sheet, evolution_gif, manifest, manifest_item, zip_bundle
from .site import describe, export_from_store, write_site

__all__ = ["contact_sheet", "evolution_gif", "manifest", "manifest_item", "zip_bundle", "describe",
           "export_from_store", "write_site"]
