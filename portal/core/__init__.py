"""Pure core of the portal: values in, values and commands out; no SQL, sockets, clock or Flask."""
