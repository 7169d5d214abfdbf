"""Contrastive learning between two views of one object (MVCNN renders, CO3D, MVImgNet, a pair
manifest); the task is `task`."""

from tasks.multiview.config import MultiviewConfig
from tasks.multiview.task import MultiviewTask

task = MultiviewTask()

__all__ = ["MultiviewConfig", "MultiviewTask", "task"]
