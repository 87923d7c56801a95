"""Adapters that bring twinrun's recording to other frameworks (Lightning)."""
