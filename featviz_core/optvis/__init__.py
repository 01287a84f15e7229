"""The optimization math, with no I/O: parameterizations, transforms, objectives, and the two loops
(`render` for channel pictures, `dream` for Deep Dream on a photo) as generators of StepRecords."""
from .dream import dream, objective_values
from .objectives import Objective
from .render import RECIPES, Recipe, StepRecord, check_finite, check_photo, element_generator, render, steps_per_octave

__all__ = ["dream", "objective_values", "Objective", "RECIPES", "Recipe", "StepRecord", "check_finite",
           "check_photo", "element_generator", "render", "steps_per_octave"]
