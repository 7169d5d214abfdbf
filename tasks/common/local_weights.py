"""Where a config's local weights are: a relative path is read from the task's data directory.

`image_weights: pretrained/image_encoder.pt` in a search space means
`<data_dir>/pretrained/image_encoder.pt`, so a dataset directory can carry its own pretrained
encoders (the demo data does, and on a cluster the data directory is what every node sees); an
absolute path (or one starting with ~) is used as given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, TypeVar

from pydantic import BaseModel

PRETRAINED_DIR = "pretrained"  # the folder of a data directory that holds its local weights

ConfigT = TypeVar("ConfigT", bound=BaseModel)


def resolve_weights_path(name: str, value: str | None, data_dir: Path) -> str | None:
    """The path `value` of config field `name`, made absolute: relative ones under data_dir.

    None stays None. A relative path that names nothing under data_dir raises ValueError (one
    line saying where it looked and what to do); an absolute one is checked by its loader.
    """
    if value is None:
        return None
    path = Path(value).expanduser()
    if path.is_absolute():
        return str(path)
    resolved = Path(data_dir).resolve() / path
    if not resolved.exists():
        raise ValueError(
            f"{name} {value}: nothing at {resolved} (a relative {name} is read from the data "
            f"directory); put the weights there, give an absolute path, or leave {name} unset"
        )
    return str(resolved)


def with_resolved_weights(config: ConfigT, data_dir: Path, fields: Iterable[str]) -> ConfigT:
    """A copy of `config` whose weight-path `fields` are absolute (see resolve_weights_path)."""
    return config.model_copy(
        update={name: resolve_weights_path(name, getattr(config, name), data_dir) for name in fields}
    )
