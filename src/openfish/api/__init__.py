"""HTTP surfaces: one thin module per surface."""
