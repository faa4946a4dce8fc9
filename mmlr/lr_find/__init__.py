"""The lr range test behind ``tools/lr_find.py``: the config's own model,
data and optim wrapper (built by a Runner), every group's lr grown
exponentially with the ratios between groups kept, the smoothed loss
recorded, a suggestion and a picture.

Importing it changes no global state (matplotlib backend, registries).
"""
from .plot import plot_range_test
from .range_test import (RangeTestResult, SmoothedLoss, exponential_lrs,
                         reference_lr, run_range_test)
from .runner_parts import (TRAINING_KEYS, TrainingParts, check_training_keys,
                           training_parts)
from .suggestion import LrSuggestion, suggest_lr

__all__ = [
    'RangeTestResult', 'SmoothedLoss', 'exponential_lrs', 'reference_lr',
    'run_range_test', 'LrSuggestion', 'suggest_lr', 'plot_range_test',
    'TRAINING_KEYS', 'TrainingParts', 'check_training_keys', 'training_parts'
]
