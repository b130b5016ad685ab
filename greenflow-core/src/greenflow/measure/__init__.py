"""Energy measurement: RAPL counters, a utilisation model, integration over windows, attribution."""
