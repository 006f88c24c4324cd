"""The image task: its model (raw pixels in), its inputs (the uint8 decode cache), its loading and crop
policy, and its `train` (the shared `FineTuner` on images)."""
