"""migrate: move databases, NAS shares and object stores to the cloud from one plan file."""

__version__ = "0.1.0"
