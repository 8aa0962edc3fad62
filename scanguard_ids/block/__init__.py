"""Enforcement backends, picked by name; imports are lazy."""
