"""The demo's news content: articles with tags, registered with the recommender."""
