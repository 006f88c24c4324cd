"""Export a run to a deployable format, verified against the Keras model on the run's test split.

    from shoulders.export import export_run
    entry = export_run("runs/NAME", "tflite", quantize="int8")   # -> the manifest entry (dict)

Formats live in one registry (`FORMATS`); each writes into ``RUN/exports/`` and records its size,
signatures and verification figures in ``RUN/exports/manifest.json``.
"""

from shoulders.export.exporting import FORMATS, ExportFormat, ExportUnavailableError, export_run, read_manifest
from shoulders.export.verify import ExportVerificationError

__all__ = ["FORMATS", "ExportFormat", "ExportUnavailableError", "ExportVerificationError", "export_run", "read_manifest"]
