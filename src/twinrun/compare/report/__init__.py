"""The report: its model, and the text, JSON, markdown and HTML renderers."""
