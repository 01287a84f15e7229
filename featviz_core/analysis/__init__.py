"""What the pictures mean: the self-check against natural photos, dataset exemplars (the scan as a
batch job through the driver, its output folder), measured receptive fields, and how layers connect:
channel circuits and layer-by-layer similarity (linear CKA), both batch jobs through the driver; and a
layer as the concepts it holds (dictionary learning, concepts.py).

Names are imported on first use (featviz_core/lazy.py)."""
from ..lazy import lazy_names

__getattr__, __dir__, __all__ = lazy_names(__name__, {
    ".circuits": "CircuitWork circuit circuit_key circuit_work next_layer previous_layer top_lists",
    ".concepts": "ConceptWork code_maps concept_heatmap concepts_key directions learn_concepts r2_curve",
    ".concepts_match": "match_concepts",
    ".concepts_photos": "FolderPhotos folder_photos photo_at",
    ".concepts_render": "ConceptScore concept_scores render_concepts",
    ".concepts_where": "Exemplar concept_exemplars",
    ".exemplar_files": "add_ratios exemplars_of read_scan scan_for_model write_outputs",
    ".exemplars": "ScanShard merge_lists spatial_maxima",
    ".photoset": "PhotoSet",
    ".receptive": "ReceptiveField measure",
    ".scan": "ScanProgress receptive_field scan_folder scan_key",
    ".selfcheck": "CheckScore LayerStats curve_z natural_stats neighbours picture_scores score_pictures "
                  "stored_scores",
    ".cka": "cka_interval cka_matrix_of hsic_matrix linear_cka similarity_key",
    ".similarity": "GramWork cka_doc cka_matrix layer_grams",
})
