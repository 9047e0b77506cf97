"""Template tags of the recommender app."""
