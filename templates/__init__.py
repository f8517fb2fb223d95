"""The Jinja2 templates, shipped inside the package as ``ratify_templates`` and read with
importlib.resources: email/ (every message kind, in fi, sv and en, as text and HTML)."""
