"""The `shoulders` command line: a thin shell over the Python API (no logic lives only here)."""
