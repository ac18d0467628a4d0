"""What a finished search shows: the leaderboard, plots, the Pareto front, and `nasorch
compare` across searches."""
