"""Validation: row counts now; checksums, value rules and file integrity to come."""
