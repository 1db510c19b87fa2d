"""Quality: per-query measures (ir-measures), paired statistics, the summary table and quantization drift."""
