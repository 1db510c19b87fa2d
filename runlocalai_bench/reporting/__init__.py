"""Reporting: figures in the house style, claims and their verdicts, the report (Markdown and HTML), and
pooling bundles from several machines."""
