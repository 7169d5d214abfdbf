"""Ray Tune messages that tell a user of this product something false, kept off the terminal.

Both were seen on a loaded machine (two test sweeps at once on 2 cores, or every zoo task
swept side by side) and are shown again with --debug.

- Tune saves its experiment state into a staging directory, writing each file under a temporary
  name and then renaming it, and copies that directory to the storage path in a background
  thread. When a save overlaps the previous copy, the copy lists a temporary file that is
  renamed before it opens it, and Tune logs "Saving experiment state ... failed" with a
  FileNotFoundError traceback. Nothing is lost: the next save copies the state again, and the
  experiment's last save waits for its copy. Any other failure to save is still shown.
- Ray's OptunaSearch warns when the search space function took over 1 s and advises moving
  training out of it. Ours only samples (spaces.py); the second is TPE and the study's sqlite
  storage on a busy machine, and the advice is wrong.
"""

from __future__ import annotations

import logging
import warnings

STATE_LOGGER = "ray.tune.execution.experiment_state"
SLOW_SPACE_WARNING = "Define-by-run function passed in the `space` argument took"


class _DropStateCopyRace(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (str(record.msg).startswith("Saving experiment state")
                    and isinstance(error, FileNotFoundError) and "-tmp-" in str(error))


def quiet_tune_noise() -> None:
    """Install both filters in this process (idempotent)."""
    logger = logging.getLogger(STATE_LOGGER)
    if not any(isinstance(f, _DropStateCopyRace) for f in logger.filters):
        logger.addFilter(_DropStateCopyRace())
    warnings.filterwarnings("ignore", message=SLOW_SPACE_WARNING, category=UserWarning)
