"""The one API layer: `shoulders.train`, the CLI and compare all go through it.

`train` picks the task's recipe, runs it, publishes the run (report, lineage) and returns the `Run`;
`compare` trains strategies through `train`; `evaluate_run` and `open_run` give later steps a run folder
that holds everything they read (an older folder gets its missing reference files first).
"""
