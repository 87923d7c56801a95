"""Judges: one per kind of file, each an outcome that accounts for every differing byte."""
