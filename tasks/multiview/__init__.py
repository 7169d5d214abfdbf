"""Contrastive learning between a front view and an angled view of one object; the task is `task`."""

from tasks.multiview.config import MultiviewConfig
from tasks.multiview.task import MultiviewTask

task = MultiviewTask()

__all__ = ["MultiviewConfig", "MultiviewTask", "task"]
