"""Bird classification from an image and its attribute annotations (CUB-200-2011 layout),
with learned modality attention; the task object is `task`."""

from tasks.cub_attributes.config import CubAttributesConfig
from tasks.cub_attributes.task import CubAttributesTask

task = CubAttributesTask()

__all__ = ["CubAttributesConfig", "CubAttributesTask", "task"]
