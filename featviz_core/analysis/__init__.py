"""What the pictures mean: the self-check against natural photos, dataset exemplars (the scan as a
batch job through the driver, its output folder), measured receptive fields, and how layers connect:
channel circuits and layer-by-layer similarity (linear CKA), both batch jobs through the driver."""
from .circuits import CircuitWork, circuit, circuit_key, circuit_work, next_layer, previous_layer, top_lists
from .exemplar_files import add_ratios, exemplars_of, read_scan, scan_for_model, write_outputs
from .exemplars import ScanShard, merge_lists, spatial_maxima
from .photoset import PhotoSet
from .receptive import ReceptiveField, measure
from .scan import ScanProgress, receptive_field, scan_folder, scan_key
from .selfcheck import (
                        CheckScore,
                        LayerStats,
                        curve_z,
                        natural_stats,
                        neighbours,
                        picture_scores,
                        score_pictures,
                        stored_scores,
)
from .similarity import GramWork, cka_matrix, layer_grams, linear_cka, similarity_key

__all__ = ["add_ratios", "exemplars_of", "read_scan", "scan_for_model", "write_outputs", "ScanShard", "merge_lists",
           "spatial_maxima", "ReceptiveField", "measure", "ScanProgress", "receptive_field", "scan_folder", "scan_key",
           "CheckScore", "LayerStats", "curve_z", "natural_stats", "neighbours", "picture_scores", "score_pictures",
           "stored_scores", "CircuitWork", "circuit", "circuit_key", "circuit_work", "next_layer", "previous_layer",
           "top_lists", "PhotoSet", "GramWork", "cka_matrix", "layer_grams", "linear_cka", "similarity_key"]
