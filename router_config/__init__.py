"""router_config: the router side of keliu (the firewall, DHCP/DNS and AP config, the Gate, the netns bench).

See docs/ROUTER.md. Pure: ``config``, ``model``, ``render``. Edges: ``nft``, ``conntrack``, ``gate``, ``monitor``,
``netbench``, ``internet``, ``cli``.
"""
