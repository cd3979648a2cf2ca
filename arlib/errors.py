"""User-facing errors: the CLI prints their message on one line and exits 2."""


class ArlibError(Exception):
    """An error caused by the user's input or environment, not by a bug."""


class DataNotFoundError(ArlibError):
    """A dataset is not on disk and could not be downloaded."""


class DamagedDataError(ArlibError):
    """A dataset archive or image does not read (truncated, garbage): the message names the file."""


class ConfigError(ArlibError):
    """A configuration value is invalid."""


class StorageError(ArlibError):
    """A file could not be written: disk full, read-only or not permitted (path, reason and errno name)."""


class DamagedRunError(ArlibError):
    """A file of the results store does not parse, load or match its checksum."""

    def __init__(self, path, reason: str):
        self.path, self.reason = path, reason
        super().__init__(f"damaged run file {path}: {reason}")
