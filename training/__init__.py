"""The training loop (`trainer.py`) and what may end or skip one of its steps (`guards.py`)."""
