"""The local pipeline: the synthesized monitor run against moto in server mode (SPEC §8)."""
