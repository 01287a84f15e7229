"""What comes from outside: photos (uploaded or bundled samples) and folders of images, opened safely."""
from .imagefolder import FolderListing, list_images, model_input, open_image
from .photos import (
    FORMATS,
    MAX_BYTES,
    SAMPLE_PHOTOS,
    TooLarge,
    open_untrusted,
    photo_digest,
    read_photo,
    sample_photo,
    skimage_photo,
    square,
    whole_photo,
)

__all__ = ["FolderListing", "list_images", "model_input", "open_image", "FORMATS", "MAX_BYTES", "SAMPLE_PHOTOS",
           "TooLarge", "open_untrusted", "photo_digest", "read_photo", "sample_photo", "skimage_photo", "square",
           "whole_photo"]
