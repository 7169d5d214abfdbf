"""Scene anomaly detection from a camera image and a LiDAR point cloud (AnoVox-like setting).

The task object is `task`. Layout and the scene-label rule: see `tasks/anomaly/data.py`;
the demo data: `tasks/anomaly/demo.py`; the model: `tasks/anomaly/model.py`.
"""

from tasks.anomaly.config import AnomalyConfig
from tasks.anomaly.task import AnomalyTask

task = AnomalyTask()

__all__ = ["AnomalyConfig", "AnomalyTask", "task"]
