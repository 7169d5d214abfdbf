"""Where a sweep keeps what it makes when the user names no place."""

DEFAULT_STORAGE = "ray_results"  # Ray Tune's results and checkpoints, relative to the working directory
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"  # MLflow 3 refuses a plain-file store by default
