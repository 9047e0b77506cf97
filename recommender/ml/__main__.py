"""python -m recommender.ml {train,recommend,evaluate}: see recommender.ml.cli."""

from recommender.ml.cli import main

raise SystemExit(main())
