"""The optimization math, with no I/O: parameterizations, transforms, objectives, and the two loops
(`render.render` for channel pictures, `dream.dream` for Deep Dream on a photo) as generators of
StepRecords. The loops are not re-exported here: `optvis.render` and `optvis.dream` stay the modules."""
from .dream import objective_values
from .objectives import Objective
from .render import RECIPES, Recipe, StepRecord, check_finite, check_photo, element_generator, steps_per_octave

__all__ = ["objective_values", "Objective", "RECIPES", "Recipe", "StepRecord", "check_finite",
           "check_photo", "element_generator", "steps_per_octave"]
