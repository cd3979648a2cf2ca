"""User-facing errors: the CLI prints their message on one line and exits 2."""


class ArlibError(Exception):
    """An error caused by the user's input or environment, not by a bug."""


class DataNotFoundError(ArlibError):
    """A dataset is not on disk and could not be downloaded."""


class ConfigError(ArlibError):
    """A configuration value is invalid."""
