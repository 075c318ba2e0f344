"""What a worker keeps per key (user, track), its versioned encoding, and its bounds.

Pure data structures over ``features``; Faust tables only store what these
modules encode. No Kafka, no Faust.
"""
