"""Operating a worker: metrics, health verdicts, the observer, logs, broker watch,
and the one way a worker stops on a fatal error.
"""
