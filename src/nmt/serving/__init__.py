"""A trained model behind HTTP: ``nmt serve`` (:mod:`nmt.serving.app`)."""
