"""The pure core of marketing: plain values in, plain values out (no database, clock, network or randomness)."""
