"""The disk cache of rendered pictures (self-healing, size-capped) and the store of visitors' uploads."""
from .disk import DEFAULT_CACHE_DIR, ChannelResult, Store, default_cache_dir, png_array, png_bytes
from .lookup import cached_json, json_key, lookup_json, store_json
from .repair import CacheFolderError
from .uploads import UPLOAD_KINDS, UploadStore, cache_budget, upload_quota

__all__ = ["DEFAULT_CACHE_DIR", "ChannelResult", "Store", "default_cache_dir", "png_array", "png_bytes",
           "cached_json", "json_key", "lookup_json", "store_json",
           "CacheFolderError", "UPLOAD_KINDS", "UploadStore", "cache_budget", "upload_quota"]
