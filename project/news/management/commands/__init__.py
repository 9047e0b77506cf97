"""``manage.py recommender_demo_seed``."""
