"""Warden's kernel: what every layer may import, and which imports no other Warden package."""
