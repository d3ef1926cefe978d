"""Connector plugins, one module or package per kind of endpoint, found by URL scheme."""
