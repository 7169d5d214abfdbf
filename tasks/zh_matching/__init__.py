"""Chinese image-text matching (SCAN/SGRAF precomp setting) with region-word attention; the
task object is `task`."""

from tasks.zh_matching.config import ZhMatchingConfig
from tasks.zh_matching.task import ZhMatchingTask

task = ZhMatchingTask()

__all__ = ["ZhMatchingConfig", "ZhMatchingTask", "task"]
