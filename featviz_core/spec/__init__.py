"""Everything that decides a picture, as plain values, and the rules every entry point checks through:
targets and the logit rule, the channel grammar, the settings' ranges. Imports nothing above errors/config."""
from .channels import CHANNEL_SYNTAX, DEFAULT_CHANNELS, MAX_CHANNELS_PER_RUN, parse_channels, random_channels
from .dream import DREAM_OBJECTIVES, WHOLE_LAYER, DreamSettings, DreamSpec
from .layers import CARD_SHAPE, ModelCard, stage_layers
from .settings import (
    BATCH_RANGE,
    DEFAULT_METHOD,
    INITS,
    METHODS,
    PHOTO,
    PRECISIONS,
    SIZE_RANGE,
    STEPS_RANGE,
    RenderSettings,
    RenderSpec,
    check_batch_size,
    check_common,
    check_whole,
)
from .targets import LOGITS, OBJECTIVES, Target, check_objective_layers, layers_for, parse_target

__all__ = ["CHANNEL_SYNTAX", "DEFAULT_CHANNELS", "MAX_CHANNELS_PER_RUN", "parse_channels", "random_channels",
           "BATCH_RANGE", "DEFAULT_METHOD", "INITS", "METHODS", "PHOTO", "PRECISIONS", "SIZE_RANGE", "STEPS_RANGE",
           "RenderSettings", "RenderSpec", "check_batch_size", "check_common", "check_whole", "LOGITS", "OBJECTIVES",
           "Target", "check_objective_layers", "layers_for", "parse_target", "DREAM_OBJECTIVES", "WHOLE_LAYER",
           "DreamSettings", "DreamSpec", "stage_layers", "CARD_SHAPE",
           "ModelCard"]
