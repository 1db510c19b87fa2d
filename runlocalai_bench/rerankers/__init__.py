"""Rerankers: the contract every backend implements (:mod:`.base`), the variant registry the backends
register with (:mod:`.registry`), converted-file caching (:mod:`.exports`) and the backends themselves."""
