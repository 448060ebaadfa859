"""The packaged sentence encoder (see export.py for how it is made)."""
