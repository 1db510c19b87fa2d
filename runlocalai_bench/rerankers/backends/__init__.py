"""One module (or subpackage) per runtime; each defines ``BACKEND = Backend(...)`` and is found by
:mod:`runlocalai_bench.rerankers.registry`. Nothing else in the package names a backend."""
