"""Client tools behind ``tunestream``: the CLI, the demo, the simulator, produce and tail."""
