"""sensor: 802.11 probe requests in, privacy-keyed sightings out (see docs/SENSOR.md and docs/PRIVACY.md).

Pure core: ``frames`` (parser), ``identity`` (keyed ids, randomized-MAC grouping), ``sightings``, ``simulate``.
Edges: ``capture``, ``replay``, ``spool``, ``sinks``, ``consent``, ``pipeline``; ``cli`` is the composition root.
"""
