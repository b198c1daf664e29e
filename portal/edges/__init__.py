"""The portal's other edges: the kernel's neighbour table, dnsmasq's lease file, SMS providers."""
