"""Work done by the workers: embedding content, training runs, the model registry and its gate, upkeep.

Nothing here imports Celery: ``recommender.tasks`` wraps these functions.
"""
