"""The marketing package's pure core: plain values in, plain values out (no SQL, HTTP, clock or environment)."""
