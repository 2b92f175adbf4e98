"""Evaluation: sacreBLEU scores and the translation files (``scoring``, no torch), the
paired bootstrap test (``bootstrap``), a whole model over every test set (``evaluate``),
comparing two evaluated models (``compare``), attention heatmaps (``heatmap``) and the
experiments table (``report``, no torch)."""
