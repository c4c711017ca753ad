"""Real protocol servers (DNS, ...) for tests and the lab, on loopback or inside a namespace."""
