"""Results: the tidy tables (names and columns defined once, in :mod:`.tables`) and the bundle folder that
holds a run's tables, run files, figures and provenance (:mod:`.bundle`)."""
