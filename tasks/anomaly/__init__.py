"""Scene anomaly detection from a camera image and a LiDAR point cloud (AnoVox-like setting).

The task object is `task` (`orchestrate sweep --task anomaly`; search space
`search_spaces/anomaly.yaml`; target `val/auroc`, max).

Data (`data.py`, `manifest.py`, `scene_files.py`, `ply.py`): a manifest (`manifest.csv`, else
`manifest.parquet`) with columns scene_id, image, points, labels, split (train/val/test; paths
relative to data_dir). Per scene: an image (png/jpg), a point cloud (`.npy` N x 4 x, y, z,
intensity, or an ASCII / binary PLY with vertex x y z [intensity]) and per-point labels (`.npy`
of N ints 0/1). Per-voxel labels are not read: convert them to per-point labels first.

Scene label rule: a scene is anomalous iff at least `min_anomalous_points` (default 5) of its
points are labelled 1, counted over the whole stored cloud. A scene whose label file is missing
or empty is a DataError naming the scene; no label is ever guessed. Each cloud is subsampled
(seeded by the scene id) or zero-padded to `num_points`, with a mask of the real points.

Model (`model.py`): small_cnn / ResNet feature map -> patch tokens; a PointNet per-point MLP
with masked max pooling; point tokens query the image patches with nn.MultiheadAttention; the
pooled fused vector with both modality embeddings -> one anomaly logit. Loss: BCE with
`pos_weight` (`auto` = negatives / positives of train) or focal loss (`focal_gamma`,
`focal_alpha`). Metrics: AUROC, AUPRC, FPR@95%TPR, and accuracy at p >= 0.5 always beside the
majority-class rate; chance AUROC 0.5 and chance AUPRC (the positive rate). Probes: embedding
statistics of each modality before fusion, and val AUROC with images or points shuffled
across the validation scenes. Demo data: `demo.py`.
"""

from tasks.anomaly.config import AnomalyConfig
from tasks.anomaly.task import AnomalyTask

task = AnomalyTask()

__all__ = ["AnomalyConfig", "AnomalyTask", "task"]
