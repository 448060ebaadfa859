"""The `qa-service` command."""

from .main import main

__all__ = ["main"]
