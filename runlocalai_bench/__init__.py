"""runlocalai-bench: reproducible benchmarks of cross-encoder rerankers (quality lift, throughput, memory)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("runlocalai-bench")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
