"""The portal's SQL edge: its tables and every read and write of them (members, sessions, limits, codes, logins)."""
