"""Beyond this machine: pushing a run folder to the Hub (hub.py), the page as a Hugging Face Space (space.py), and the
platforms' rules in one table (platforms.py)."""
