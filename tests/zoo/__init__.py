"""The failure zoo: small real tasks, each with one broken piece a health guard must catch.

Each module's `task` is a plug-in task (`tests.zoo.<module>:task`) over the shared dataset of
`tests/zoo/base.py`: noise (modality_ignored), wrong_infonce (impossible_value), zero_loss
(flat_line), collapse (embedding_collapse), majority (chance_level), plateau (plateau).
"""
