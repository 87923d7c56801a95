"""Comparing two run directories and judging them: readers, sections, verdict rules, reports.

Reads files only and knows no trainer; imports nothing from :mod:`twinrun.verify`, :mod:`twinrun.testing`
or :mod:`twinrun.trainers`.
"""
