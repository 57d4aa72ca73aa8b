"""Training stages: ``python -m train <stage> [--config FILE] [key.sub=value ...]``."""
