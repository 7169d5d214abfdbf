"""Two tiny plug-in tasks, different in what they train and report, swept side by side by
tests/test_concurrent_sweeps.py: a matcher (val/mean_r1) and a classifier (val/accuracy) on
the failure zoo's dataset, a fraction of a second per epoch.

`SPACES` holds each task's search space, written to `search_spaces/<name>.yaml` of the
directory the sweep runs in (a multi-task sweep reads each task's default space).
"""

from tests.zoo.base import ClassifierTask
from tests.zoo.plateau import PlateauMatcherTask


class SideMatcher(PlateauMatcherTask):
    name = "side_matcher"


class SideClassifier(ClassifierTask):
    name = "side_classifier"


matcher = SideMatcher()
classifier = SideClassifier()

SPACES = {
    task.name: {
        "task": task.name, "metric": task.metric, "mode": task.mode,
        "budget": {"max_epochs": 3, "grace_period": 3, "reduction_factor": 2},
        "fixed": {"batch_size": 32},
        "parameters": {"learning_rate": {"type": "float", "low": 0.005, "high": 0.02, "log": True}},
        "health": {},
    }
    for task in (matcher, classifier)
}
