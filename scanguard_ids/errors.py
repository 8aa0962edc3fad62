"""The one exception hierarchy of scanguard-ids."""

from __future__ import annotations


class ScanguardError(Exception):
    """Base class of every error scanguard raises on purpose."""


class ConfigError(ScanguardError):
    """A config key or CLI argument is wrong; the message names the key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class BackendError(ScanguardError):
    """An enforcement backend could not do what was asked."""


class ControlError(ScanguardError):
    """The control socket could not be reached or answered with an error."""


class CommandError(ScanguardError):
    """A command could not be started, hung, or (when checked) exited non-zero.

    Raised by :func:`scanguard_ids.children.run`, the one way to run a command; a layer
    that owns its own error type re-raises it as that (backends: BackendError).
    """
