"""SQL engines on one SQLAlchemy Core implementation (base.py) plus one module each."""
