"""Hubbub world server: config, tokens, signaling, sessions, tick loop, HTTP admin/metrics, CLI."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hubbub")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+source"
