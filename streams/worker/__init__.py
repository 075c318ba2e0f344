"""The Faust app and the worker process: wiring only; decisions live in ``pipeline``."""
