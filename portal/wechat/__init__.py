"""Everything WeChat: OAuth, the official account and its pushes, Wi-Fi sign, the hand-off release, identities and their tables, the views."""
