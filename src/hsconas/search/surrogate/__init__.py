"""Surrogates of the search: cheap models fitted on the queried architectures
(:mod:`.models`), the pair the HSCoNAS evolution refits every batch (:mod:`.search_models`) and the
acquisition quantities that pick a batch from their predictions (:mod:`.acquisition`)."""
