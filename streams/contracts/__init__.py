"""Wire contracts: the event and recommendation records, their JSON Schemas, the clock.

Everything a producer or a consumer of tunestream topics can rely on is decided
here, once. Imports nothing from the other rooms of ``streams``.
"""
