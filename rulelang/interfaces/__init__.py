"""What people and tools use: the Python API, the command line, the renderers (text, JSON,
HTML) and the demo region."""
