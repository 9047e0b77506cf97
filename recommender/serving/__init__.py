"""Answering "what should this reader see": the loaded model, candidates, rules, ranking, the pipeline.

:func:`recommender.serving.recommend.recommend` is the one entry point; ``related``
builds the non-personal lists on the same tail.
"""
