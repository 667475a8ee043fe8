"""IntelGraph Collab: the real-time collaboration sync service of IntelGraph."""

__version__ = "0.1.0"
