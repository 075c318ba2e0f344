"""What one input message does: decode, dedupe, fold into state, plan every output.

Pure functions and small policy objects (the refresh throttle); the worker
applies the plan they return. No Kafka, no Faust.
"""
