"""The worker's HTTP surface: JSON errors everywhere, Faust internals switched off."""
