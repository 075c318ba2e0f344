"""Kafka plumbing: topics, the producer, replicated readers, the embedded broker,
security options, and the Faust corrections.
"""
