"""The marketing package's pure core: codes, offers and their validity, redemption decisions, POS rows, metrics.
Nothing here touches a database, a socket, the clock or the environment."""
