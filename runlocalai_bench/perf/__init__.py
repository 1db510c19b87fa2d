"""Performance: the timing harness, memory and energy counters, the roofline (FLOPs, peaks, MFU) and the
throughput rows of one (variant, device)."""
