"""Image-text retrieval (Flickr8k setting) with a dual encoder; the task object is `task`."""

from tasks.retrieval.config import RetrievalConfig
from tasks.retrieval.task import RetrievalTask

task = RetrievalTask()

__all__ = ["RetrievalConfig", "RetrievalTask", "task"]
