"""The failure zoo: small real tasks, each with one broken piece a health guard must catch, and
healthy tasks no failure guard may stop.

Each module's `task` is a plug-in task (`tests.zoo.<module>:task`) over the shared dataset of
`tests/zoo/base.py`. Broken: noise (modality_ignored), wrong_infonce (impossible_value),
zero_loss (flat_line), collapse (embedding_collapse), majority (chance_level), dead_relu
(embedding_collapse of zero vectors), constant_tower (embedding_collapse of the second
modality), class_leak (leakage), unpaired_labels (chance_level). Healthy: plateau (converges:
plateau), one_modality_first (learns its attributes before its images), small_val_plateau
(wanders at its ceiling on a small val set: plateau).
"""
