"""netprobe."""
