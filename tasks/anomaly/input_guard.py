"""What may reach the model: x, y, z and LiDAR intensity, never a semantic label.

AnoVox stores its labelled scans in the very shapes of its LiDAR scans: the generator's
SEMANTIC-LIDAR(...)/*.npy is N x 4 like LIDAR(...)/*.npy, its 4th column the semantic tag where
the LiDAR's holds intensity; the released SEMANTIC_PCD/*.pcd has the fields of PCD/*.pcd, its
`rgb` the label colour where the LiDAR's carries intensity. Read as points, a semantic scan hands
the model its label (anomaly tags 29-34 and 100, anomaly colour (245, 0, 0)) and any detector
scores AUROC 1.0 by counting points. So every point reader passes these guards:
1. by place: a points file under a folder, or with a name, starting with SEMANTIC is refused
   (and so is such an image: AnoVox's SEMANTIC_IMG / SEMANTIC-CAM images paint the anomaly in
   its label colour, and INSTANCE-CAM ones outline it);
2. by content: a 4th column of whole numbers that are all AnoVox semantic tags, one above 1
   (LiDAR intensity lies in [0, 1]), is refused;
3. by content: colours read as intensity that are all AnoVox label colours, not all grey, are
   refused.
Each raises DataError naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tasks.anomaly.anovox_labels import KNOWN_TAGS, is_label_palette
from tasks.base import DataError

SEMANTIC_PREFIX = "SEMANTIC"
LABEL_IMAGE_PREFIXES = (SEMANTIC_PREFIX, "INSTANCE")
GUARD_SAMPLE_ROWS = 4096  # rows a cheap check inspects; readers guard every row


def refuse_semantic_path(path: Path) -> None:
    """DataError when the points file lives in, or is named as, a semantic scan."""
    parts = [Path(path).name, Path(path).parent.name]
    if any(part.upper().startswith(SEMANTIC_PREFIX) for part in parts):
        raise DataError(
            f"{path}: a semantic scan given as the points (its labels would be the model's input); "
            "give the LiDAR scan (PCD/ or LIDAR(...)/) as points, the semantic one as labels"
        )


def refuse_label_image_path(path: Path) -> None:
    """DataError when the camera image lives in, or is named as, a semantic or instance image."""
    parts = [Path(path).name, Path(path).parent.name]
    if any(part.upper().startswith(LABEL_IMAGE_PREFIXES) for part in parts):
        raise DataError(
            f"{path}: a semantic or instance image given as the camera image (it paints the labels); "
            "give the RGB image (RGB_IMG/ or RGB-CAM(...)/)"
        )


def refuse_tag_column(values: np.ndarray, path: Path) -> None:
    """DataError when a would-be intensity column holds AnoVox semantic tags."""
    values = np.asarray(values, dtype=np.float64)
    if not len(values) or not np.isfinite(values).all() or (values != np.round(values)).any():
        return
    if values.max() <= 1:
        return
    if set(np.unique(values).astype(np.int64).tolist()) <= KNOWN_TAGS:
        raise DataError(
            f"{path}: the 4th column holds AnoVox semantic tags (whole numbers up to "
            f"{int(values.max())}), not LiDAR intensity in [0, 1]: a semantic scan given as points "
            "would hand the model its label; give the LiDAR scan"
        )


def refuse_label_colours(colours: np.ndarray, path: Path) -> None:
    """DataError when colours that would become intensity are AnoVox label colours."""
    if is_label_palette(colours):
        raise DataError(
            f"{path}: its colours are AnoVox label colours, not grey intensities: a semantic "
            "scan given as points would hand the model its label; give the LiDAR scan (PCD/)"
        )
