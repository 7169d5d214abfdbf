"""Scene anomaly detection from a camera image and a LiDAR point cloud (AnoVox-like setting).

The task object is `task` (`orchestrate sweep --task anomaly`; search space
`search_spaces/anomaly.yaml`; target `val/auroc`, max).

Data (`data.py`, `layouts/`): the dataset as users download it, its layout detected
(`layouts/detection.py`), one reader module per layout:
- AnoVox as released (`layouts/anovox_released.py`): Scenario_<id>/RGB_IMG, PCD, SEMANTIC_PCD,
  one .pcd per frame (`pcd_scans.py`, the PCD format in tasks/common/pcd.py);
- AnoVox as its generator writes it (`layouts/anovox_generator.py`): Scenario_<id>/RGB-CAM(...),
  LIDAR(...), SEMANTIC-LIDAR(...) sensor folders of .npy scans (`npy_scans.py`);
- a scene manifest (`layouts/scene_manifest.py`, `manifest.py`, `scene_files.py`, `ply.py`):
  manifest.csv / .parquet naming each scene's image, points (.npy / .ply / .pcd) and 0/1 labels.
Per-point labels come from the semantic scan, anomalous by AnoVox's own ids and colours
(`anovox_labels.py`), carried to the LiDAR's points by `label_alignment.py`; AnoVox is split by
scenario (`scenario_split.py`); no semantic column can reach the model (`input_guard.py`).

Scene label rule: a frame (scene) is anomalous iff at least `min_anomalous_points` (default 5) of
its LiDAR points are labelled anomalous, counted over the whole stored cloud. No label is ever
guessed. Each cloud is subsampled (seeded by the sample id) or zero-padded to `num_points`, with
a mask of the real points.

Model (`model.py`): small_cnn / ResNet feature map -> patch tokens; a PointNet per-point MLP
with masked max pooling; point tokens query the image patches with nn.MultiheadAttention; the
pooled fused vector with both modality embeddings -> one anomaly logit. Loss: BCE with
`pos_weight` (`auto` = negatives / positives of train) or focal loss (`focal_gamma`,
`focal_alpha`). Metrics: AUROC, AUPRC, FPR@95%TPR, and accuracy at p >= 0.5 always beside the
majority-class rate; chance AUROC 0.5 and chance AUPRC (the positive rate). Probes: embedding
statistics of each modality before fusion, and val AUROC with images or points shuffled
across the validation scenes. Demo data: `demo_scenes.py` (the procedural drives) written in
AnoVox's released layout by `demo.py`.
"""

from tasks.anomaly.config import AnomalyConfig
from tasks.anomaly.task import AnomalyTask

task = AnomalyTask()

__all__ = ["AnomalyConfig", "AnomalyTask", "task"]
