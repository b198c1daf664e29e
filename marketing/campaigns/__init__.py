"""Campaigns (edges): their tables, the send ledger and the contact policy's atomic counts."""
