"""Readers: a run directory's files into values, never running code."""
