"""The on-disk layouts the anomaly task reads, one reader module each, and which one a folder holds.

- anovox_released.py   AnoVox as released: Scenario_<id>/RGB_IMG, PCD, SEMANTIC_PCD (.pcd scans)
- anovox_generator.py  AnoVox as its generator writes it: Scenario_<id>/RGB-CAM(...)_<hash>,
                       LIDAR(...)_<hash>, SEMANTIC-LIDAR(...)_<hash> (.npy scans)
- scene_manifest.py    the generic route: manifest.csv / manifest.parquet naming each scene's files
Shared: base.py (the reader interface, FrameFiles), anovox_scenarios.py (scenario folders, frame
ids), detection.py (which layout a folder holds).
"""
